import { Bar, CartesianGrid, ComposedChart, Line, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { formatCompact, formatNumber } from "@/lib/format";
import type { TrafficPoint } from "@/types";

export function TrafficChart({ data }: { data: TrafficPoint[] | undefined }) {
  return (
    <Card className="lg:col-span-2">
      <CardHeader>
        <CardTitle>Traffic and signups</CardTitle>
        <CardDescription>Daily marketing-site visitors (bars) and trial signups (line), June</CardDescription>
      </CardHeader>
      <CardContent className="h-80">
        {!data ? (
          <Skeleton className="size-full" />
        ) : (
          <ResponsiveContainer width="100%" height="100%">
            <ComposedChart data={data} margin={{ left: 0, right: 0, top: 8 }}>
              <CartesianGrid strokeDasharray="3 3" vertical={false} stroke="var(--color-border)" />
              <XAxis dataKey="day" tickLine={false} axisLine={false} fontSize={11} interval={4} />
              <YAxis yAxisId="visitors" tickFormatter={(v: number) => formatCompact(v)} tickLine={false} axisLine={false} fontSize={12} width={40} />
              <YAxis yAxisId="signups" orientation="right" tickLine={false} axisLine={false} fontSize={12} width={32} />
              <Tooltip formatter={(v) => formatNumber(Number(v))} contentStyle={{ borderRadius: 8, fontSize: 12 }} />
              <Bar yAxisId="visitors" dataKey="visitors" name="Visitors" fill="var(--color-chart-2)" radius={[3, 3, 0, 0]} />
              <Line yAxisId="signups" dataKey="signups" name="Signups" stroke="var(--color-primary)" strokeWidth={2} dot={false} type="monotone" />
            </ComposedChart>
          </ResponsiveContainer>
        )}
      </CardContent>
    </Card>
  );
}
