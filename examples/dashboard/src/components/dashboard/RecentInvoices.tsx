import { Link } from "react-router-dom";
import { Badge } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { InvoiceStatusBadge } from "@/components/customers/StatusBadge";
import { formatCurrency, formatDate } from "@/lib/format";
import { useCustomerStore } from "@/store/useCustomerStore";
import type { Invoice } from "@/types";

export function RecentInvoices({ invoices }: { invoices: Invoice[] }) {
  const customers = useCustomerStore((s) => s.customers);
  const byId = new Map(customers.map((c) => [c.id, c]));
  const recent = [...invoices].sort((a, b) => b.issuedAt.localeCompare(a.issuedAt)).slice(0, 6);

  return (
    <Card className="col-span-full lg:col-span-4">
      <CardHeader className="flex flex-row items-start justify-between">
        <div className="grid gap-1.5">
          <CardTitle>Recent invoices</CardTitle>
          <CardDescription>The last six invoices sent</CardDescription>
        </div>
        <Button asChild variant="outline" size="sm">
          <Link to="/invoices">View all</Link>
        </Button>
      </CardHeader>
      <CardContent>
        <Table>
          <TableHeader>
            <TableRow>
              <TableHead>Invoice</TableHead>
              <TableHead>Customer</TableHead>
              <TableHead>Issued</TableHead>
              <TableHead>Status</TableHead>
              <TableHead className="text-right">Amount</TableHead>
            </TableRow>
          </TableHeader>
          <TableBody>
            {recent.map((invoice) => (
              <TableRow key={invoice.id}>
                <TableCell className="font-mono text-xs">{invoice.number}</TableCell>
                <TableCell>{byId.get(invoice.customerId)?.company ?? <Badge variant="outline">removed</Badge>}</TableCell>
                <TableCell className="text-muted-foreground">{formatDate(invoice.issuedAt)}</TableCell>
                <TableCell>
                  <InvoiceStatusBadge status={invoice.status} />
                </TableCell>
                <TableCell className="text-right font-medium tabular-nums">{formatCurrency(invoice.amount)}</TableCell>
              </TableRow>
            ))}
          </TableBody>
        </Table>
      </CardContent>
    </Card>
  );
}
