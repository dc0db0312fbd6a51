import { Bar, BarChart, LabelList, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { formatNumber } from "@/lib/format";
import type { FunnelStep } from "@/types";

export function FunnelChart({ data }: { data: FunnelStep[] | undefined }) {
  const top = data?.[0]?.users ?? 1;
  const rows = data?.map((d) => ({ ...d, rate: `${((d.users / top) * 100).toFixed(1)}%` }));
  return (
    <Card>
      <CardHeader>
        <CardTitle>Conversion funnel</CardTitle>
        <CardDescription>From pricing page to paid, last 30 days</CardDescription>
      </CardHeader>
      <CardContent className="h-80">
        {!rows ? (
          <Skeleton className="size-full" />
        ) : (
          <ResponsiveContainer width="100%" height="100%">
            <BarChart data={rows} layout="vertical" margin={{ left: 8, right: 48 }}>
              <XAxis type="number" hide />
              <YAxis type="category" dataKey="step" width={120} tickLine={false} axisLine={false} fontSize={12} />
              <Tooltip formatter={(v) => formatNumber(Number(v))} />
              <Bar dataKey="users" fill="var(--color-chart-1)" radius={[0, 4, 4, 0]}>
                <LabelList dataKey="rate" position="right" fontSize={12} fill="var(--color-muted-foreground)" />
              </Bar>
            </BarChart>
          </ResponsiveContainer>
        )}
      </CardContent>
    </Card>
  );
}
