import { useForm, useWatch } from "react-hook-form";
import { zodResolver } from "@hookform/resolvers/zod";
import { Button } from "@/components/ui/button";
import { FormField } from "@/components/ui/form-field";
import { Input } from "@/components/ui/input";
import { Select } from "@/components/ui/select";
import { Textarea } from "@/components/ui/textarea";
import { COUNTRIES, PLAN_LABELS, PLAN_PRICES } from "@/lib/constants";
import { formatCurrency } from "@/lib/format";
import { customerSchema, type CustomerFormValues } from "@/lib/schemas";

interface CustomerFormProps {
  defaultValues?: Partial<CustomerFormValues>;
  submitLabel?: string;
  onSubmit: (values: CustomerFormValues) => void | Promise<void>;
  onCancel?: () => void;
}

const planOptions = Object.entries(PLAN_LABELS).map(([value, label]) => ({ value, label }));
const countryOptions = COUNTRIES.map((c) => ({ value: c, label: c }));

export function CustomerForm({ defaultValues, submitLabel = "Save customer", onSubmit, onCancel }: CustomerFormProps) {
  const {
    register,
    handleSubmit,
    control,
    formState: { errors, isSubmitting },
  } = useForm<CustomerFormValues>({
    resolver: zodResolver(customerSchema),
    defaultValues: { name: "", company: "", email: "", plan: "growth", seats: 5, country: "", notes: "", ...defaultValues },
  });

  const [plan, seats] = useWatch({ control, name: ["plan", "seats"] });
  const estimate = PLAN_PRICES[plan] + (Number.isFinite(seats) ? seats : 0) * 6;

  return (
    <form onSubmit={handleSubmit(onSubmit)} className="grid gap-4" noValidate>
      <div className="grid gap-4 sm:grid-cols-2">
        <FormField id="name" label="Contact name" error={errors.name?.message}>
          <Input id="name" autoComplete="name" aria-invalid={!!errors.name} {...register("name")} />
        </FormField>
        <FormField id="company" label="Company" error={errors.company?.message}>
          <Input id="company" autoComplete="organization" aria-invalid={!!errors.company} {...register("company")} />
        </FormField>
      </div>
      <FormField id="email" label="Billing email" error={errors.email?.message}>
        <Input id="email" type="email" autoComplete="email" aria-invalid={!!errors.email} {...register("email")} />
      </FormField>
      <div className="grid gap-4 sm:grid-cols-3">
        <FormField id="plan" label="Plan" error={errors.plan?.message}>
          <Select id="plan" options={planOptions} {...register("plan")} />
        </FormField>
        <FormField id="seats" label="Seats" error={errors.seats?.message}>
          <Input id="seats" type="number" min={1} aria-invalid={!!errors.seats} {...register("seats", { valueAsNumber: true })} />
        </FormField>
        <FormField id="country" label="Country" error={errors.country?.message}>
          <Select id="country" placeholder="Choose…" options={countryOptions} aria-invalid={!!errors.country} {...register("country")} />
        </FormField>
      </div>
      <FormField id="notes" label="Notes" error={errors.notes?.message} hint="Visible to your team only.">
        <Textarea id="notes" rows={3} {...register("notes")} />
      </FormField>
      <div className="flex items-center justify-between gap-2 border-t pt-4">
        <p className="text-sm text-muted-foreground">
          Estimated MRR <span className="font-semibold text-foreground">{formatCurrency(estimate)}</span>
        </p>
        <div className="flex gap-2">
          {onCancel && (
            <Button type="button" variant="outline" onClick={onCancel}>
              Cancel
            </Button>
          )}
          <Button type="submit" disabled={isSubmitting}>
            {isSubmitting ? "Saving…" : submitLabel}
          </Button>
        </div>
      </div>
    </form>
  );
}
