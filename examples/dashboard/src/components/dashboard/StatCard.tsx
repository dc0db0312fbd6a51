import type { LucideIcon } from "lucide-react";
import { TrendingDown, TrendingUp } from "lucide-react";
import { Card, CardContent, CardHeader, CardTitle } from "@/components/ui/card";
import { formatPercent } from "@/lib/format";
import { cn } from "@/lib/utils";

interface StatCardProps {
  title: string;
  value: string;
  change: number;
  icon: LucideIcon;
  // For metrics where going down is good (churn), a negative change is shown in green.
  invert?: boolean;
}

export function StatCard({ title, value, change, icon: Icon, invert = false }: StatCardProps) {
  const good = invert ? change <= 0 : change >= 0;
  const Trend = change >= 0 ? TrendingUp : TrendingDown;
  return (
    <Card className="transition-shadow hover:shadow-md">
      <CardHeader className="flex flex-row items-center justify-between pb-2">
        <CardTitle className="text-sm font-medium text-muted-foreground">{title}</CardTitle>
        <div className="rounded-md bg-primary/10 p-1.5">
          <Icon className="size-4 text-primary" />
        </div>
      </CardHeader>
      <CardContent>
        <div className="text-2xl font-bold tabular-nums">{value}</div>
        <p className={cn("mt-1 flex items-center gap-1 text-xs", good ? "text-success" : "text-destructive")}>
          <Trend className="size-3" />
          {formatPercent(change)} <span className="text-muted-foreground">vs. last month</span>
        </p>
      </CardContent>
    </Card>
  );
}
