import { FunnelChart } from "@/components/analytics/FunnelChart";
import { TrafficChart } from "@/components/analytics/TrafficChart";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { useAsync } from "@/hooks/use-async";
import { api } from "@/lib/api";
import { formatNumber, formatPercent } from "@/lib/format";
import { sum } from "@/lib/utils";

export default function Analytics() {
  const traffic = useAsync(api.traffic);
  const funnel = useAsync(api.funnel);
  const visitors = sum(traffic.data?.map((d) => d.visitors) ?? []);
  const signups = sum(traffic.data?.map((d) => d.signups) ?? []);
  const summary = [
    { label: "Visitors", value: formatNumber(visitors), change: 8.1 },
    { label: "Trial signups", value: formatNumber(signups), change: 3.4 },
    { label: "Visitor → trial", value: visitors ? `${((signups / visitors) * 100).toFixed(2)}%` : "—", change: -0.3 },
  ];

  return (
    <div className="grid gap-6">
      <div>
        <h2 className="text-2xl font-semibold tracking-tight">Analytics</h2>
        <p className="text-sm text-muted-foreground">Acquisition and activation, last 30 days</p>
      </div>
      <div className="grid gap-4 sm:grid-cols-3">
        {summary.map((s) => (
          <Card key={s.label}>
            <CardHeader className="pb-2">
              <CardDescription>{s.label}</CardDescription>
              <CardTitle className="text-2xl tabular-nums">{s.value}</CardTitle>
            </CardHeader>
            <CardContent className={s.change >= 0 ? "text-xs text-success" : "text-xs text-destructive"}>{formatPercent(s.change)} vs. May</CardContent>
          </Card>
        ))}
      </div>
      <Tabs defaultValue="acquisition">
        <TabsList>
          <TabsTrigger value="acquisition">Acquisition</TabsTrigger>
          <TabsTrigger value="activation">Activation</TabsTrigger>
        </TabsList>
        <TabsContent value="acquisition" className="grid gap-4 lg:grid-cols-3">
          <TrafficChart data={traffic.data} />
          <FunnelChart data={funnel.data} />
        </TabsContent>
        <TabsContent value="activation">
          <FunnelChart data={funnel.data} />
        </TabsContent>
      </Tabs>
    </div>
  );
}
