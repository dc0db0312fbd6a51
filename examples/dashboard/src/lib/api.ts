import { activity, funnel, invoices, kpis, revenue, traffic } from "@/lib/mock-data";
import { sleep } from "@/lib/utils";
import type { Activity, FunnelStep, Invoice, Kpi, RevenuePoint, TrafficPoint } from "@/types";

// A stand-in for the real API: resolves mock data after a short, realistic delay.
async function respond<T>(data: T, ms = 350): Promise<T> {
  await sleep(ms);
  return structuredClone(data);
}

export const api = {
  kpis: (): Promise<Kpi[]> => respond(kpis),
  revenue: (): Promise<RevenuePoint[]> => respond(revenue, 500),
  traffic: (): Promise<TrafficPoint[]> => respond(traffic, 450),
  funnel: (): Promise<FunnelStep[]> => respond(funnel),
  activity: (): Promise<Activity[]> => respond(activity, 250),
  invoices: (): Promise<Invoice[]> => respond(invoices),
};
