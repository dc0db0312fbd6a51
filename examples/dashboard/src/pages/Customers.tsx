import { useMemo, useState } from "react";
import { useSearchParams } from "react-router-dom";
import { ChevronLeft, ChevronRight, Download, Users } from "lucide-react";
import { CustomerFilters } from "@/components/customers/CustomerFilters";
import { CustomerTable } from "@/components/customers/CustomerTable";
import { NewCustomerDialog } from "@/components/customers/NewCustomerDialog";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardHeader } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { useFilteredCustomers, type CustomerFilter } from "@/hooks/use-filtered-customers";
import { PAGE_SIZE } from "@/lib/constants";
import { formatCurrency } from "@/lib/format";
import { sum } from "@/lib/utils";
import { useCustomerStore } from "@/store/useCustomerStore";
import type { Customer } from "@/types";

function toCsv(rows: Customer[]): string {
  const header = ["id", "company", "name", "email", "plan", "status", "seats", "mrr"];
  const lines = rows.map((c) => [c.id, c.company, c.name, c.email, c.plan, c.status, c.seats, c.mrr].map((v) => JSON.stringify(String(v))).join(","));
  return [header.join(","), ...lines].join("\n");
}

export default function Customers() {
  const [params] = useSearchParams();
  const customers = useCustomerStore((s) => s.customers);
  const [filter, setFilter] = useState<CustomerFilter>({ query: params.get("q") ?? "", plan: "all", status: "all", sort: "name" });
  const [page, setPage] = useState(0);
  const found = useFilteredCustomers(customers, filter);
  const pages = Math.max(1, Math.ceil(found.length / PAGE_SIZE));
  const current = Math.min(page, pages - 1);
  const visible = useMemo(() => found.slice(current * PAGE_SIZE, (current + 1) * PAGE_SIZE), [found, current]);

  const exportCsv = () => {
    const url = URL.createObjectURL(new Blob([toCsv(found)], { type: "text/csv" }));
    const a = Object.assign(document.createElement("a"), { href: url, download: "customers.csv" });
    a.click();
    URL.revokeObjectURL(url);
  };

  return (
    <div className="grid gap-6">
      <div className="flex flex-col justify-between gap-4 sm:flex-row sm:items-end">
        <div>
          <h2 className="text-2xl font-semibold tracking-tight">Customers</h2>
          <p className="text-sm text-muted-foreground">
            {found.length} accounts · {formatCurrency(sum(found.map((c) => c.mrr)))} MRR
          </p>
        </div>
        <div className="flex gap-2">
          <Button variant="outline" onClick={exportCsv}>
            <Download /> Export
          </Button>
          <NewCustomerDialog />
        </div>
      </div>
      <Card>
        <CardHeader>
          <CustomerFilters
            value={filter}
            onChange={(next) => {
              setFilter(next);
              setPage(0);
            }}
          />
        </CardHeader>
        <CardContent>
          {visible.length === 0 ? (
            <EmptyState icon={Users} title="No customers match" description="Try another search, or clear the filters." />
          ) : (
            <CustomerTable customers={visible} />
          )}
          <div className="mt-4 flex items-center justify-between text-sm text-muted-foreground">
            <span>
              Page {current + 1} of {pages}
            </span>
            <div className="flex gap-2">
              <Button variant="outline" size="sm" disabled={current === 0} onClick={() => setPage(current - 1)}>
                <ChevronLeft /> Previous
              </Button>
              <Button variant="outline" size="sm" disabled={current >= pages - 1} onClick={() => setPage(current + 1)}>
                Next <ChevronRight />
              </Button>
            </div>
          </div>
        </CardContent>
      </Card>
    </div>
  );
}
