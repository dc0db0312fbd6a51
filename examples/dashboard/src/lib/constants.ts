import {
  BarChart3,
  FolderKanban,
  LayoutDashboard,
  Receipt,
  Settings,
  Users,
  type LucideIcon,
} from "lucide-react";
import type { CustomerStatus, InvoiceStatus, Plan, Priority, ProjectStage } from "@/types";

export const APP_NAME = "Orbit";
export const APP_TAGLINE = "Revenue and customer operations";
export const SUPPORT_EMAIL = "support@orbit.example";

export interface NavItem {
  label: string;
  to: string;
  icon: LucideIcon;
}

export const NAV_ITEMS: NavItem[] = [
  { label: "Overview", to: "/", icon: LayoutDashboard },
  { label: "Customers", to: "/customers", icon: Users },
  { label: "Projects", to: "/projects", icon: FolderKanban },
  { label: "Invoices", to: "/invoices", icon: Receipt },
  { label: "Analytics", to: "/analytics", icon: BarChart3 },
  { label: "Settings", to: "/settings", icon: Settings },
];

export const PLAN_LABELS: Record<Plan, string> = {
  starter: "Starter",
  growth: "Growth",
  scale: "Scale",
  enterprise: "Enterprise",
};

export const PLAN_PRICES: Record<Plan, number> = {
  starter: 49,
  growth: 199,
  scale: 599,
  enterprise: 2400,
};

export const STATUS_LABELS: Record<CustomerStatus, string> = {
  active: "Active",
  trial: "Trial",
  past_due: "Past due",
  churned: "Churned",
};

export const INVOICE_STATUS_LABELS: Record<InvoiceStatus, string> = {
  paid: "Paid",
  open: "Open",
  overdue: "Overdue",
  void: "Void",
};

export const STAGE_LABELS: Record<ProjectStage, string> = {
  backlog: "Backlog",
  active: "In progress",
  review: "In review",
  shipped: "Shipped",
};

export const PRIORITY_LABELS: Record<Priority, string> = {
  low: "Low",
  medium: "Medium",
  high: "High",
  urgent: "Urgent",
};

export const COUNTRIES = ["United States", "Germany", "United Kingdom", "France", "Canada", "Japan", "Brazil", "India"];

export const PAGE_SIZE = 8;
