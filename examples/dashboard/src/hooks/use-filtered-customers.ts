import { useMemo } from "react";
import { useDebounce } from "@/hooks/use-debounce";
import type { Customer, CustomerStatus, Plan } from "@/types";

export interface CustomerFilter {
  query: string;
  plan: Plan | "all";
  status: CustomerStatus | "all";
  sort: "name" | "mrr" | "createdAt";
}

export function useFilteredCustomers(customers: Customer[], filter: CustomerFilter): Customer[] {
  const query = useDebounce(filter.query.trim().toLowerCase(), 200);
  return useMemo(() => {
    const found = customers.filter(
      (c) =>
        (filter.plan === "all" || c.plan === filter.plan) &&
        (filter.status === "all" || c.status === filter.status) &&
        (!query || `${c.name} ${c.company} ${c.email}`.toLowerCase().includes(query)),
    );
    return found.sort((a, b) => {
      if (filter.sort === "mrr") return b.mrr - a.mrr;
      if (filter.sort === "createdAt") return b.createdAt.localeCompare(a.createdAt);
      return a.name.localeCompare(b.name);
    });
  }, [customers, filter.plan, filter.status, filter.sort, query]);
}
