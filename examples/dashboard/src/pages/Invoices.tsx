import { useMemo } from "react";
import { InvoiceStatusBadge } from "@/components/customers/StatusBadge";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { Tabs, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { useAsync } from "@/hooks/use-async";
import { useLocalStorage } from "@/hooks/use-local-storage";
import { api } from "@/lib/api";
import { INVOICE_STATUS_LABELS } from "@/lib/constants";
import { formatCurrency, formatDate } from "@/lib/format";
import { sum } from "@/lib/utils";
import { useCustomerStore } from "@/store/useCustomerStore";
import type { InvoiceStatus } from "@/types";

type Tab = InvoiceStatus | "all";

export default function Invoices() {
  const { data, loading } = useAsync(api.invoices);
  const customers = useCustomerStore((s) => s.customers);
  const [tab, setTab] = useLocalStorage<Tab>("orbit-invoice-tab", "all");
  const names = useMemo(() => new Map(customers.map((c) => [c.id, c.company])), [customers]);
  const rows = (data ?? []).filter((i) => tab === "all" || i.status === tab).sort((a, b) => b.issuedAt.localeCompare(a.issuedAt));
  const outstanding = sum((data ?? []).filter((i) => i.status === "open" || i.status === "overdue").map((i) => i.amount));

  return (
    <div className="grid gap-6">
      <div>
        <h2 className="text-2xl font-semibold tracking-tight">Invoices</h2>
        <p className="text-sm text-muted-foreground">{formatCurrency(outstanding)} outstanding</p>
      </div>
      <Card>
        <CardHeader className="flex flex-col gap-4 md:flex-row md:items-center md:justify-between">
          <div className="grid gap-1.5">
            <CardTitle>All invoices</CardTitle>
            <CardDescription>{rows.length} shown</CardDescription>
          </div>
          <Tabs value={tab} onValueChange={(v) => setTab(v as Tab)}>
            <TabsList>
              <TabsTrigger value="all">All</TabsTrigger>
              {(Object.keys(INVOICE_STATUS_LABELS) as InvoiceStatus[]).map((status) => (
                <TabsTrigger key={status} value={status}>
                  {INVOICE_STATUS_LABELS[status]}
                </TabsTrigger>
              ))}
            </TabsList>
          </Tabs>
        </CardHeader>
        <CardContent>
          {loading ? (
            <div className="grid gap-2">
              {Array.from({ length: 8 }, (_, i) => (
                <Skeleton key={i} className="h-10" />
              ))}
            </div>
          ) : (
            <Table>
              <TableHeader>
                <TableRow>
                  <TableHead>Number</TableHead>
                  <TableHead>Customer</TableHead>
                  <TableHead>Issued</TableHead>
                  <TableHead>Due</TableHead>
                  <TableHead>Status</TableHead>
                  <TableHead className="text-right">Amount</TableHead>
                </TableRow>
              </TableHeader>
              <TableBody>
                {rows.map((inv) => (
                  <TableRow key={inv.id}>
                    <TableCell className="font-mono text-xs">{inv.number}</TableCell>
                    <TableCell>{names.get(inv.customerId) ?? "—"}</TableCell>
                    <TableCell className="text-muted-foreground">{formatDate(inv.issuedAt)}</TableCell>
                    <TableCell className="text-muted-foreground">{formatDate(inv.dueAt)}</TableCell>
                    <TableCell>
                      <InvoiceStatusBadge status={inv.status} />
                    </TableCell>
                    <TableCell className="text-right font-medium tabular-nums">{formatCurrency(inv.amount)}</TableCell>
                  </TableRow>
                ))}
              </TableBody>
            </Table>
          )}
        </CardContent>
      </Card>
    </div>
  );
}
