import { Badge, type BadgeProps } from "@/components/ui/badge";
import { INVOICE_STATUS_LABELS, STATUS_LABELS } from "@/lib/constants";
import type { CustomerStatus, InvoiceStatus } from "@/types";

const CUSTOMER_VARIANTS: Record<CustomerStatus, BadgeProps["variant"]> = {
  active: "success",
  trial: "default",
  past_due: "warning",
  churned: "secondary",
};

const INVOICE_VARIANTS: Record<InvoiceStatus, BadgeProps["variant"]> = {
  paid: "success",
  open: "default",
  overdue: "destructive",
  void: "secondary",
};

export function CustomerStatusBadge({ status }: { status: CustomerStatus }) {
  return <Badge variant={CUSTOMER_VARIANTS[status]}>{STATUS_LABELS[status]}</Badge>;
}

export function InvoiceStatusBadge({ status }: { status: InvoiceStatus }) {
  return <Badge variant={INVOICE_VARIANTS[status]}>{INVOICE_STATUS_LABELS[status]}</Badge>;
}
