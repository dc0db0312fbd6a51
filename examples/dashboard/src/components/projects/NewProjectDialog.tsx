import { useState } from "react";
import { useForm } from "react-hook-form";
import { zodResolver } from "@hookform/resolvers/zod";
import { Plus } from "lucide-react";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogFooter, DialogHeader, DialogTitle, DialogTrigger } from "@/components/ui/dialog";
import { FormField } from "@/components/ui/form-field";
import { Input } from "@/components/ui/input";
import { Select } from "@/components/ui/select";
import { Textarea } from "@/components/ui/textarea";
import { useToast } from "@/hooks/use-toast";
import { PRIORITY_LABELS } from "@/lib/constants";
import { projectSchema, type ProjectFormValues } from "@/lib/schemas";
import { useProjectStore } from "@/store/useProjectStore";

const priorityOptions = Object.entries(PRIORITY_LABELS).map(([value, label]) => ({ value, label }));

export function NewProjectDialog() {
  const [open, setOpen] = useState(false);
  const add = useProjectStore((s) => s.add);
  const { toast } = useToast();
  const {
    register,
    handleSubmit,
    reset,
    formState: { errors },
  } = useForm<ProjectFormValues>({
    resolver: zodResolver(projectSchema),
    defaultValues: { title: "", description: "", priority: "medium", owner: "", dueDate: "" },
  });

  const submit = handleSubmit((values) => {
    add({ ...values, dueDate: new Date(values.dueDate).toISOString() });
    toast({ title: "Project added to the backlog", description: values.title, variant: "success" });
    reset();
    setOpen(false);
  });

  return (
    <Dialog open={open} onOpenChange={setOpen}>
      <DialogTrigger asChild>
        <Button>
          <Plus /> New project
        </Button>
      </DialogTrigger>
      <DialogContent>
        <DialogHeader>
          <DialogTitle>New project</DialogTitle>
          <DialogDescription>Projects start in the backlog.</DialogDescription>
        </DialogHeader>
        <form onSubmit={submit} className="grid gap-4" noValidate>
          <FormField id="title" label="Title" error={errors.title?.message}>
            <Input id="title" aria-invalid={!!errors.title} {...register("title")} />
          </FormField>
          <FormField id="description" label="Description" error={errors.description?.message}>
            <Textarea id="description" rows={2} {...register("description")} />
          </FormField>
          <div className="grid gap-4 sm:grid-cols-3">
            <FormField id="priority" label="Priority">
              <Select id="priority" options={priorityOptions} {...register("priority")} />
            </FormField>
            <FormField id="owner" label="Owner" error={errors.owner?.message}>
              <Input id="owner" aria-invalid={!!errors.owner} {...register("owner")} />
            </FormField>
            <FormField id="dueDate" label="Due" error={errors.dueDate?.message}>
              <Input id="dueDate" type="date" aria-invalid={!!errors.dueDate} {...register("dueDate")} />
            </FormField>
          </div>
          <DialogFooter>
            <Button type="button" variant="outline" onClick={() => setOpen(false)}>
              Cancel
            </Button>
            <Button type="submit">Add project</Button>
          </DialogFooter>
        </form>
      </DialogContent>
    </Dialog>
  );
}
