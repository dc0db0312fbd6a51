import { Search, X } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Input } from "@/components/ui/input";
import { Select } from "@/components/ui/select";
import type { CustomerFilter } from "@/hooks/use-filtered-customers";
import { PLAN_LABELS, STATUS_LABELS } from "@/lib/constants";

interface CustomerFiltersProps {
  value: CustomerFilter;
  onChange: (value: CustomerFilter) => void;
}

const planOptions = [{ value: "all", label: "All plans" }, ...Object.entries(PLAN_LABELS).map(([value, label]) => ({ value, label }))];
const statusOptions = [{ value: "all", label: "Any status" }, ...Object.entries(STATUS_LABELS).map(([value, label]) => ({ value, label }))];
const sortOptions = [
  { value: "name", label: "Sort: name" },
  { value: "mrr", label: "Sort: MRR" },
  { value: "createdAt", label: "Sort: newest" },
];

export function CustomerFilters({ value, onChange }: CustomerFiltersProps) {
  const dirty = value.query !== "" || value.plan !== "all" || value.status !== "all";
  return (
    <div className="flex flex-col gap-2 md:flex-row md:items-center">
      <div className="relative md:w-72">
        <Search className="absolute left-2.5 top-2.5 size-4 text-muted-foreground" />
        <Input
          value={value.query}
          onChange={(e) => onChange({ ...value, query: e.target.value })}
          placeholder="Search name, company or email"
          className="pl-8"
          aria-label="Search customers"
        />
      </div>
      <Select
        aria-label="Plan"
        className="md:w-36"
        options={planOptions}
        value={value.plan}
        onChange={(e) => onChange({ ...value, plan: e.target.value as CustomerFilter["plan"] })}
      />
      <Select
        aria-label="Status"
        className="md:w-36"
        options={statusOptions}
        value={value.status}
        onChange={(e) => onChange({ ...value, status: e.target.value as CustomerFilter["status"] })}
      />
      <Select
        aria-label="Sort"
        className="md:w-40"
        options={sortOptions}
        value={value.sort}
        onChange={(e) => onChange({ ...value, sort: e.target.value as CustomerFilter["sort"] })}
      />
      {dirty && (
        <Button variant="ghost" size="sm" onClick={() => onChange({ ...value, query: "", plan: "all", status: "all" })}>
          <X /> Reset
        </Button>
      )}
    </div>
  );
}
