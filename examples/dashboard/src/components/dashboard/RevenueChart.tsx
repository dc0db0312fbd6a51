import { Area, AreaChart, CartesianGrid, Legend, ResponsiveContainer, Tooltip, XAxis, YAxis } from "recharts";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { formatCompact, formatCurrency } from "@/lib/format";
import type { RevenuePoint } from "@/types";

export function RevenueChart({ data }: { data: RevenuePoint[] | undefined }) {
  return (
    <Card className="col-span-full lg:col-span-4">
      <CardHeader>
        <CardTitle>Recurring revenue</CardTitle>
        <CardDescription>MRR, new business and churn over the last 12 months</CardDescription>
      </CardHeader>
      <CardContent className="h-80">
        {!data ? (
          <Skeleton className="size-full" />
        ) : (
          <ResponsiveContainer width="100%" height="100%">
            <AreaChart data={data} margin={{ left: 0, right: 8, top: 8 }}>
              <defs>
                <linearGradient id="mrr" x1="0" y1="0" x2="0" y2="1">
                  <stop offset="5%" stopColor="var(--color-primary)" stopOpacity={0.35} />
                  <stop offset="95%" stopColor="var(--color-primary)" stopOpacity={0} />
                </linearGradient>
              </defs>
              <CartesianGrid strokeDasharray="3 3" vertical={false} stroke="var(--color-border)" />
              <XAxis dataKey="month" tickLine={false} axisLine={false} fontSize={12} />
              <YAxis tickFormatter={(v: number) => formatCompact(v)} tickLine={false} axisLine={false} fontSize={12} width={48} />
              <Tooltip formatter={(v) => formatCurrency(Number(v))} contentStyle={{ borderRadius: 8, fontSize: 12 }} />
              <Legend iconType="circle" wrapperStyle={{ fontSize: 12 }} />
              <Area name="MRR" type="monotone" dataKey="mrr" stroke="var(--color-primary)" fill="url(#mrr)" strokeWidth={2} />
              <Area name="New business" type="monotone" dataKey="newBusiness" stroke="var(--color-chart-2)" fill="transparent" strokeWidth={2} />
              <Area name="Churn" type="monotone" dataKey="churn" stroke="var(--color-destructive)" fill="transparent" strokeDasharray="4 4" strokeWidth={2} />
            </AreaChart>
          </ResponsiveContainer>
        )}
      </CardContent>
    </Card>
  );
}
