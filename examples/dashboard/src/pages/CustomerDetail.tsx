import { Link, useParams } from "react-router-dom";
import { ArrowLeft, Mail, MapPin, UserX } from "lucide-react";
import { CustomerForm } from "@/components/customers/CustomerForm";
import { CustomerStatusBadge, InvoiceStatusBadge } from "@/components/customers/StatusBadge";
import { Avatar, AvatarFallback } from "@/components/ui/avatar";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { EmptyState } from "@/components/ui/empty-state";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { Tabs, TabsContent, TabsList, TabsTrigger } from "@/components/ui/tabs";
import { useToast } from "@/hooks/use-toast";
import { PLAN_LABELS } from "@/lib/constants";
import { formatCurrency, formatDate, timeAgo } from "@/lib/format";
import { invoices } from "@/lib/mock-data";
import { initials } from "@/lib/utils";
import { useCustomerStore } from "@/store/useCustomerStore";

export default function CustomerDetail() {
  const { id } = useParams<{ id: string }>();
  const customer = useCustomerStore((s) => s.customers.find((c) => c.id === id));
  const update = useCustomerStore((s) => s.update);
  const { toast } = useToast();

  if (!customer) {
    return (
      <EmptyState
        icon={UserX}
        title="Customer not found"
        description="It may have been deleted, or the link is wrong."
        action={
          <Button asChild variant="outline">
            <Link to="/customers">Back to customers</Link>
          </Button>
        }
      />
    );
  }

  const billed = invoices.filter((i) => i.customerId === customer.id);
  const facts: [string, string][] = [
    ["Plan", PLAN_LABELS[customer.plan]],
    ["Seats", String(customer.seats)],
    ["MRR", formatCurrency(customer.mrr)],
    ["Customer since", formatDate(customer.createdAt)],
    ["Last seen", timeAgo(customer.lastSeenAt)],
  ];

  return (
    <div className="grid gap-6">
      <Button asChild variant="ghost" size="sm" className="w-fit">
        <Link to="/customers">
          <ArrowLeft /> Customers
        </Link>
      </Button>
      <div className="flex flex-wrap items-center gap-4">
        <Avatar className="size-14">
          <AvatarFallback className="text-base">{initials(customer.company)}</AvatarFallback>
        </Avatar>
        <div className="flex-1">
          <h2 className="flex items-center gap-2 text-2xl font-semibold">
            {customer.company} <CustomerStatusBadge status={customer.status} />
          </h2>
          <p className="flex flex-wrap gap-4 text-sm text-muted-foreground">
            <span className="flex items-center gap-1">
              <Mail className="size-3.5" /> {customer.email}
            </span>
            <span className="flex items-center gap-1">
              <MapPin className="size-3.5" /> {customer.country}
            </span>
          </p>
        </div>
      </div>

      <Tabs defaultValue="overview">
        <TabsList>
          <TabsTrigger value="overview">Overview</TabsTrigger>
          <TabsTrigger value="invoices">Invoices ({billed.length})</TabsTrigger>
          <TabsTrigger value="edit">Edit</TabsTrigger>
        </TabsList>
        <TabsContent value="overview">
          <Card>
            <CardContent className="grid gap-6 pt-6 sm:grid-cols-5">
              {facts.map(([label, value]) => (
                <div key={label}>
                  <p className="text-xs uppercase tracking-wide text-muted-foreground">{label}</p>
                  <p className="mt-1 font-semibold">{value}</p>
                </div>
              ))}
            </CardContent>
          </Card>
        </TabsContent>
        <TabsContent value="invoices">
          <Card>
            <CardContent className="pt-6">
              {billed.length === 0 ? (
                <p className="text-sm text-muted-foreground">No invoices yet.</p>
              ) : (
                <Table>
                  <TableHeader>
                    <TableRow>
                      <TableHead>Number</TableHead>
                      <TableHead>Issued</TableHead>
                      <TableHead>Due</TableHead>
                      <TableHead>Status</TableHead>
                      <TableHead className="text-right">Amount</TableHead>
                    </TableRow>
                  </TableHeader>
                  <TableBody>
                    {billed.map((inv) => (
                      <TableRow key={inv.id}>
                        <TableCell className="font-mono text-xs">{inv.number}</TableCell>
                        <TableCell>{formatDate(inv.issuedAt)}</TableCell>
                        <TableCell>{formatDate(inv.dueAt)}</TableCell>
                        <TableCell>
                          <InvoiceStatusBadge status={inv.status} />
                        </TableCell>
                        <TableCell className="text-right tabular-nums">{formatCurrency(inv.amount)}</TableCell>
                      </TableRow>
                    ))}
                  </TableBody>
                </Table>
              )}
            </CardContent>
          </Card>
        </TabsContent>
        <TabsContent value="edit">
          <Card>
            <CardHeader>
              <CardTitle>Edit customer</CardTitle>
              <CardDescription>Changes apply from the next billing cycle.</CardDescription>
            </CardHeader>
            <CardContent>
              <CustomerForm
                defaultValues={customer}
                onSubmit={(values) => {
                  update(customer.id, values);
                  toast({ title: "Customer updated", variant: "success" });
                }}
              />
            </CardContent>
          </Card>
        </TabsContent>
      </Tabs>
    </div>
  );
}
