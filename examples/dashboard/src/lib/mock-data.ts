import type { Activity, Customer, FunnelStep, Invoice, Kpi, Plan, Project, RevenuePoint, TrafficPoint } from "@/types";
import { PLAN_PRICES } from "@/lib/constants";

const PEOPLE: [string, string, string][] = [
  ["Amara Okafor", "Lumen Labs", "Nigeria"],
  ["Jonas Weber", "Kiln Analytics", "Germany"],
  ["Priya Raman", "Saffron Health", "India"],
  ["Lucas Martin", "Atelier Nord", "France"],
  ["Sofia Rossi", "Verde Logistics", "Italy"],
  ["Ethan Brooks", "Northpeak", "United States"],
  ["Mei Tanaka", "Kumo Systems", "Japan"],
  ["Gabriel Souza", "Onda Pay", "Brazil"],
  ["Chloe Bennett", "Fernhill Studio", "United Kingdom"],
  ["Noah Fischer", "Brightline", "Germany"],
  ["Ava Thompson", "Cobalt CRM", "United States"],
  ["Liam O'Connor", "Harbor & Co", "Ireland"],
  ["Isabella García", "Mesa Retail", "Spain"],
  ["Oliver Wright", "Quillbase", "United Kingdom"],
  ["Yuki Sato", "Hikari Media", "Japan"],
  ["Daniel Kim", "Parallel AI", "Canada"],
  ["Emma Laurent", "Petit Four", "France"],
  ["Mateo Silva", "Rumo Travel", "Brazil"],
  ["Hannah Schulz", "Tessel", "Germany"],
  ["Arjun Mehta", "Stackwise", "India"],
  ["Grace Lee", "Juniper Finance", "United States"],
  ["Leo Novak", "Driftwood", "Czechia"],
  ["Zoe Campbell", "Maple Works", "Canada"],
  ["Samuel Adeyemi", "Baobab Cloud", "Nigeria"],
];

const PLANS: Plan[] = ["starter", "growth", "growth", "scale", "starter", "enterprise", "growth", "scale"];
const STATUSES = ["active", "active", "active", "trial", "active", "past_due", "active", "churned"] as const;

function isoDaysAgo(days: number): string {
  const d = new Date(Date.UTC(2025, 5, 30));
  d.setUTCDate(d.getUTCDate() - days);
  return d.toISOString();
}

export const customers: Customer[] = PEOPLE.map(([name, company, country], i) => {
  const plan = PLANS[i % PLANS.length]!;
  const seats = 3 + ((i * 7) % 40);
  const status = STATUSES[(i * 3) % STATUSES.length]!;
  return {
    id: `cus_${(1000 + i * 37).toString(36)}`,
    name,
    company,
    email: `${name.split(" ")[0]!.toLowerCase().replace(/[^a-z]/g, "")}@${company.toLowerCase().replace(/[^a-z]/g, "")}.example`,
    plan,
    status,
    mrr: status === "churned" ? 0 : PLAN_PRICES[plan] + seats * (plan === "enterprise" ? 18 : 6),
    seats,
    country,
    createdAt: isoDaysAgo(40 + i * 23),
    lastSeenAt: isoDaysAgo((i * 5) % 19),
  };
});

export const invoices: Invoice[] = customers.flatMap((customer, i) =>
  [0, 1, 2].map((n) => {
    const issued = 5 + n * 30 + (i % 4);
    const status = n > 0 ? "paid" : customer.status === "past_due" ? "overdue" : customer.status === "churned" ? "void" : i % 3 === 0 ? "open" : "paid";
    return {
      id: `inv_${i}_${n}`,
      number: `ORB-${String(2400 + i * 3 + n).padStart(5, "0")}`,
      customerId: customer.id,
      amount: Math.max(customer.mrr, PLAN_PRICES[customer.plan]),
      status,
      issuedAt: isoDaysAgo(issued),
      dueAt: isoDaysAgo(issued - 14),
    } satisfies Invoice;
  }),
);

export const revenue: RevenuePoint[] = ["Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Jan", "Feb", "Mar", "Apr", "May", "Jun"].map(
  (month, i) => ({
    month,
    mrr: Math.round(38000 + i * 2950 + Math.sin(i / 1.7) * 1800),
    newBusiness: Math.round(3600 + ((i * 1337) % 2400)),
    churn: Math.round(900 + ((i * 613) % 1100)),
  }),
);

export const traffic: TrafficPoint[] = Array.from({ length: 30 }, (_, i) => {
  const visitors = Math.round(1800 + Math.sin(i / 3) * 420 + i * 22 + (i % 7 === 5 || i % 7 === 6 ? -500 : 0));
  return { day: `Jun ${i + 1}`, visitors, signups: Math.round(visitors * (0.031 + (i % 5) * 0.002)) };
});

export const funnel: FunnelStep[] = [
  { step: "Visited pricing", users: 12840 },
  { step: "Started trial", users: 2310 },
  { step: "Invited a teammate", users: 1188 },
  { step: "Connected billing", users: 642 },
  { step: "Converted", users: 418 },
];

export const projects: Project[] = [
  { id: "prj_1", title: "Usage-based billing", description: "Meter API calls and bill overage monthly.", stage: "active", priority: "urgent", owner: "Grace Lee", progress: 62, dueDate: isoDaysAgo(-12), tags: ["billing", "api"] },
  { id: "prj_2", title: "SSO for Enterprise", description: "SAML and SCIM provisioning for the enterprise plan.", stage: "review", priority: "high", owner: "Daniel Kim", progress: 88, dueDate: isoDaysAgo(-4), tags: ["security"] },
  { id: "prj_3", title: "Churn survey", description: "Ask cancelling customers why, and route answers to CS.", stage: "backlog", priority: "medium", owner: "Chloe Bennett", progress: 0, dueDate: isoDaysAgo(-40), tags: ["growth"] },
  { id: "prj_4", title: "Dunning emails v2", description: "Smarter retry schedule for failed card payments.", stage: "active", priority: "high", owner: "Jonas Weber", progress: 35, dueDate: isoDaysAgo(-18), tags: ["billing", "email"] },
  { id: "prj_5", title: "Annual plans", description: "Offer yearly billing with two months free.", stage: "shipped", priority: "medium", owner: "Priya Raman", progress: 100, dueDate: isoDaysAgo(20), tags: ["pricing"] },
  { id: "prj_6", title: "Status page", description: "Public uptime page with incident history.", stage: "backlog", priority: "low", owner: "Leo Novak", progress: 0, dueDate: isoDaysAgo(-60), tags: ["infra"] },
  { id: "prj_7", title: "Customer health score", description: "Blend usage, tickets and payments into one score.", stage: "active", priority: "medium", owner: "Amara Okafor", progress: 48, dueDate: isoDaysAgo(-25), tags: ["analytics"] },
  { id: "prj_8", title: "EU data residency", description: "Host EU tenants in Frankfurt.", stage: "review", priority: "urgent", owner: "Hannah Schulz", progress: 91, dueDate: isoDaysAgo(-2), tags: ["infra", "security"] },
  { id: "prj_9", title: "Referral program", description: "Give a month free for every referred paying team.", stage: "shipped", priority: "low", owner: "Mateo Silva", progress: 100, dueDate: isoDaysAgo(45), tags: ["growth"] },
  { id: "prj_10", title: "Invoice PDF redesign", description: "Cleaner invoices with tax breakdowns.", stage: "backlog", priority: "low", owner: "Emma Laurent", progress: 0, dueDate: isoDaysAgo(-30), tags: ["billing", "design"] },
];

export const activity: Activity[] = [
  { id: "act_1", actor: "Juniper Finance", action: "paid invoice", target: "ORB-02461", at: isoDaysAgo(0), kind: "payment" },
  { id: "act_2", actor: "Parallel AI", action: "upgraded to", target: "Scale", at: isoDaysAgo(0), kind: "payment" },
  { id: "act_3", actor: "Daniel Kim", action: "moved to review", target: "SSO for Enterprise", at: isoDaysAgo(1), kind: "project" },
  { id: "act_4", actor: "Rumo Travel", action: "started a trial of", target: "Growth", at: isoDaysAgo(1), kind: "signup" },
  { id: "act_5", actor: "Northpeak", action: "opened a ticket about", target: "CSV exports", at: isoDaysAgo(2), kind: "support" },
  { id: "act_6", actor: "Priya Raman", action: "shipped", target: "Annual plans", at: isoDaysAgo(3), kind: "project" },
  { id: "act_7", actor: "Tessel", action: "added 12 seats to", target: "Growth", at: isoDaysAgo(4), kind: "payment" },
];

export const kpis: Kpi[] = [
  { key: "mrr", label: "Monthly recurring revenue", value: revenue.at(-1)!.mrr, change: 6.4 },
  { key: "customers", label: "Paying customers", value: customers.filter((c) => c.status !== "churned" && c.status !== "trial").length, change: 4.2 },
  { key: "arpa", label: "Avg. revenue per account", value: 486, change: 1.8 },
  { key: "churn", label: "Revenue churn", value: 2.1, change: -0.6 },
];

export function planBreakdown(list: Customer[]): { plan: Plan; customers: number; mrr: number }[] {
  const plans: Plan[] = ["starter", "growth", "scale", "enterprise"];
  return plans.map((plan) => {
    const inPlan = list.filter((c) => c.plan === plan && c.status !== "churned");
    return { plan, customers: inPlan.length, mrr: inPlan.reduce((acc, c) => acc + c.mrr, 0) };
  });
}
