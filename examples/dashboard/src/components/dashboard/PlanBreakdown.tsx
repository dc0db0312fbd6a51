import { Cell, Pie, PieChart, ResponsiveContainer, Tooltip } from "recharts";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { PLAN_LABELS } from "@/lib/constants";
import { formatCurrency } from "@/lib/format";
import { planBreakdown } from "@/lib/mock-data";
import { useCustomerStore } from "@/store/useCustomerStore";

const COLORS = ["var(--color-chart-1)", "var(--color-chart-2)", "var(--color-chart-3)", "var(--color-chart-4)"];

export function PlanBreakdown() {
  const customers = useCustomerStore((s) => s.customers);
  const data = planBreakdown(customers).map((row) => ({ ...row, name: PLAN_LABELS[row.plan] }));
  const total = data.reduce((acc, row) => acc + row.mrr, 0);

  return (
    <Card className="col-span-full lg:col-span-3">
      <CardHeader>
        <CardTitle>MRR by plan</CardTitle>
        <CardDescription>{formatCurrency(total)} across {customers.length} accounts</CardDescription>
      </CardHeader>
      <CardContent className="grid gap-4 sm:grid-cols-2 lg:grid-cols-1 xl:grid-cols-2">
        <div className="h-48">
          <ResponsiveContainer width="100%" height="100%">
            <PieChart>
              <Pie data={data} dataKey="mrr" nameKey="name" innerRadius={48} outerRadius={76} paddingAngle={2} stroke="none">
                {data.map((row, i) => (
                  <Cell key={row.plan} fill={COLORS[i % COLORS.length]} />
                ))}
              </Pie>
              <Tooltip formatter={(v) => formatCurrency(Number(v))} />
            </PieChart>
          </ResponsiveContainer>
        </div>
        <ul className="flex flex-col justify-center gap-3 text-sm">
          {data.map((row, i) => (
            <li key={row.plan} className="flex items-center gap-2">
              <span className="size-2.5 rounded-full" style={{ background: COLORS[i % COLORS.length] }} />
              <span className="flex-1">{row.name}</span>
              <span className="text-muted-foreground">{row.customers}</span>
              <span className="w-20 text-right font-medium tabular-nums">{formatCurrency(row.mrr)}</span>
            </li>
          ))}
        </ul>
      </CardContent>
    </Card>
  );
}
