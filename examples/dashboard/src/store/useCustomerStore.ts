import { create } from "zustand";
import { persist } from "zustand/middleware";
import { customers as seed } from "@/lib/mock-data";
import { PLAN_PRICES } from "@/lib/constants";
import type { CustomerFormValues } from "@/lib/schemas";
import { createId } from "@/lib/utils";
import type { Customer, CustomerStatus } from "@/types";

interface CustomerState {
  customers: Customer[];
  add: (values: CustomerFormValues) => Customer;
  update: (id: string, values: Partial<Customer>) => void;
  setStatus: (id: string, status: CustomerStatus) => void;
  remove: (id: string) => void;
  reset: () => void;
}

export const useCustomerStore = create<CustomerState>()(
  persist(
    (set) => ({
      customers: seed,
      add: (values) => {
        const now = new Date().toISOString();
        const customer: Customer = {
          ...values,
          id: createId("cus"),
          status: "trial",
          mrr: PLAN_PRICES[values.plan] + values.seats * 6,
          createdAt: now,
          lastSeenAt: now,
        };
        set((s) => ({ customers: [customer, ...s.customers] }));
        return customer;
      },
      update: (id, values) => set((s) => ({ customers: s.customers.map((c) => (c.id === id ? { ...c, ...values } : c)) })),
      setStatus: (id, status) =>
        set((s) => ({ customers: s.customers.map((c) => (c.id === id ? { ...c, status, mrr: status === "churned" ? 0 : c.mrr } : c)) })),
      remove: (id) => set((s) => ({ customers: s.customers.filter((c) => c.id !== id) })),
      reset: () => set({ customers: seed }),
    }),
    { name: "orbit-customers", version: 1 },
  ),
);
