import { Link } from "react-router-dom";
import { MoreHorizontal, Trash2, UserX } from "lucide-react";
import { CustomerStatusBadge } from "@/components/customers/StatusBadge";
import { Avatar, AvatarFallback } from "@/components/ui/avatar";
import { Button } from "@/components/ui/button";
import { DropdownMenu, DropdownMenuContent, DropdownMenuItem, DropdownMenuTrigger } from "@/components/ui/dropdown-menu";
import { Table, TableBody, TableCell, TableHead, TableHeader, TableRow } from "@/components/ui/table";
import { useToast } from "@/hooks/use-toast";
import { PLAN_LABELS } from "@/lib/constants";
import { formatCurrency, timeAgo } from "@/lib/format";
import { initials } from "@/lib/utils";
import { useCustomerStore } from "@/store/useCustomerStore";
import type { Customer } from "@/types";

export function CustomerTable({ customers }: { customers: Customer[] }) {
  const setStatus = useCustomerStore((s) => s.setStatus);
  const remove = useCustomerStore((s) => s.remove);
  const { toast } = useToast();

  return (
    <Table>
      <TableHeader>
        <TableRow>
          <TableHead>Customer</TableHead>
          <TableHead>Plan</TableHead>
          <TableHead>Status</TableHead>
          <TableHead className="text-right">Seats</TableHead>
          <TableHead className="text-right">MRR</TableHead>
          <TableHead>Last seen</TableHead>
          <TableHead className="w-10" />
        </TableRow>
      </TableHeader>
      <TableBody>
        {customers.map((c) => (
          <TableRow key={c.id}>
            <TableCell>
              <Link to={`/customers/${c.id}`} className="flex items-center gap-3 hover:underline">
                <Avatar className="size-8">
                  <AvatarFallback>{initials(c.name)}</AvatarFallback>
                </Avatar>
                <div>
                  <p className="font-medium">{c.company}</p>
                  <p className="text-xs text-muted-foreground">{c.name}</p>
                </div>
              </Link>
            </TableCell>
            <TableCell>{PLAN_LABELS[c.plan]}</TableCell>
            <TableCell>
              <CustomerStatusBadge status={c.status} />
            </TableCell>
            <TableCell className="text-right tabular-nums">{c.seats}</TableCell>
            <TableCell className="text-right font-medium tabular-nums">{formatCurrency(c.mrr)}</TableCell>
            <TableCell className="text-muted-foreground">{timeAgo(c.lastSeenAt)}</TableCell>
            <TableCell>
              <DropdownMenu>
                <DropdownMenuTrigger asChild>
                  <Button variant="ghost" size="icon" aria-label={`Actions for ${c.company}`}>
                    <MoreHorizontal />
                  </Button>
                </DropdownMenuTrigger>
                <DropdownMenuContent align="end">
                  <DropdownMenuItem
                    disabled={c.status === "churned"}
                    onSelect={() => {
                      setStatus(c.id, "churned");
                      toast({ title: `${c.company} marked as churned` });
                    }}
                  >
                    <UserX /> Mark as churned
                  </DropdownMenuItem>
                  <DropdownMenuItem
                    className="text-destructive focus:text-destructive"
                    onSelect={() => {
                      remove(c.id);
                      toast({ title: `${c.company} removed`, variant: "destructive" });
                    }}
                  >
                    <Trash2 /> Delete
                  </DropdownMenuItem>
                </DropdownMenuContent>
              </DropdownMenu>
            </TableCell>
          </TableRow>
        ))}
      </TableBody>
    </Table>
  );
}
