import { DollarSign, Percent, UserCheck, Wallet } from "lucide-react";
import { ActivityFeed } from "@/components/dashboard/ActivityFeed";
import { PlanBreakdown } from "@/components/dashboard/PlanBreakdown";
import { RecentInvoices } from "@/components/dashboard/RecentInvoices";
import { RevenueChart } from "@/components/dashboard/RevenueChart";
import { StatCard } from "@/components/dashboard/StatCard";
import { Skeleton } from "@/components/ui/skeleton";
import { useAsync } from "@/hooks/use-async";
import { api } from "@/lib/api";
import { formatCurrency, formatNumber } from "@/lib/format";
import { useSettingsStore } from "@/store/useSettingsStore";
import type { Kpi } from "@/types";

const ICONS = { mrr: DollarSign, customers: UserCheck, arpa: Wallet, churn: Percent } as const;

function display(kpi: Kpi): string {
  if (kpi.key === "churn") return `${kpi.value.toFixed(1)}%`;
  if (kpi.key === "customers") return formatNumber(kpi.value);
  return formatCurrency(kpi.value);
}

export default function Dashboard() {
  const firstName = useSettingsStore((s) => s.profile.fullName.split(" ")[0]);
  const kpis = useAsync(api.kpis);
  const revenue = useAsync(api.revenue);
  const activity = useAsync(api.activity);
  const invoices = useAsync(api.invoices);

  return (
    <div className="grid gap-6">
      <section
        className="relative overflow-hidden rounded-xl bg-cover bg-center p-6 text-white shadow-sm md:p-8"
        style={{ backgroundImage: "url(/hero.png)" }}
      >
        <div className="absolute inset-0 bg-gradient-to-r from-indigo-950/90 via-indigo-950/60 to-transparent" />
        <div className="relative max-w-lg">
          <p className="text-sm text-indigo-200">Welcome back, {firstName}</p>
          <h2 className="mt-1 text-2xl font-semibold md:text-3xl">Revenue is up 6.4% this month</h2>
          <p className="mt-2 text-sm text-indigo-100/80">Two enterprise renewals closed early and failed payments are at a 12-month low.</p>
        </div>
      </section>

      <div className="grid gap-4 sm:grid-cols-2 xl:grid-cols-4">
        {kpis.data
          ? kpis.data.map((kpi) => (
              <StatCard key={kpi.key} title={kpi.label} value={display(kpi)} change={kpi.change} icon={ICONS[kpi.key]} invert={kpi.key === "churn"} />
            ))
          : Array.from({ length: 4 }, (_, i) => <Skeleton key={i} className="h-32" />)}
      </div>

      <div className="grid gap-4 lg:grid-cols-7">
        <RevenueChart data={revenue.data} />
        <PlanBreakdown />
      </div>

      <div className="grid gap-4 lg:grid-cols-7">
        {invoices.data ? <RecentInvoices invoices={invoices.data} /> : <Skeleton className="col-span-full h-96 lg:col-span-4" />}
        <ActivityFeed items={activity.data} />
      </div>
    </div>
  );
}
