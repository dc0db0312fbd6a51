export type Plan = "starter" | "growth" | "scale" | "enterprise";

export type CustomerStatus = "active" | "trial" | "past_due" | "churned";

export interface Customer {
  id: string;
  name: string;
  company: string;
  email: string;
  plan: Plan;
  status: CustomerStatus;
  mrr: number;
  seats: number;
  country: string;
  createdAt: string;
  lastSeenAt: string;
  notes?: string;
}

export type InvoiceStatus = "paid" | "open" | "overdue" | "void";

export interface Invoice {
  id: string;
  number: string;
  customerId: string;
  amount: number;
  status: InvoiceStatus;
  issuedAt: string;
  dueAt: string;
}

export type ProjectStage = "backlog" | "active" | "review" | "shipped";

export type Priority = "low" | "medium" | "high" | "urgent";

export interface Project {
  id: string;
  title: string;
  description: string;
  stage: ProjectStage;
  priority: Priority;
  owner: string;
  progress: number;
  dueDate: string;
  tags: string[];
}

export interface RevenuePoint {
  month: string;
  mrr: number;
  newBusiness: number;
  churn: number;
}

export interface TrafficPoint {
  day: string;
  visitors: number;
  signups: number;
}

export interface FunnelStep {
  step: string;
  users: number;
}

export interface Activity {
  id: string;
  actor: string;
  action: string;
  target: string;
  at: string;
  kind: "payment" | "signup" | "project" | "support";
}

export interface Kpi {
  key: "mrr" | "customers" | "arpa" | "churn";
  label: string;
  value: number;
  change: number;
}

export type Theme = "light" | "dark" | "system";
