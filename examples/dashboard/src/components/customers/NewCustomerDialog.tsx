import { useState } from "react";
import { useNavigate } from "react-router-dom";
import { Plus } from "lucide-react";
import { CustomerForm } from "@/components/customers/CustomerForm";
import { Button } from "@/components/ui/button";
import { Dialog, DialogContent, DialogDescription, DialogHeader, DialogTitle, DialogTrigger } from "@/components/ui/dialog";
import { useToast } from "@/hooks/use-toast";
import { sleep } from "@/lib/utils";
import { useCustomerStore } from "@/store/useCustomerStore";

export function NewCustomerDialog() {
  const [open, setOpen] = useState(false);
  const add = useCustomerStore((s) => s.add);
  const navigate = useNavigate();
  const { toast } = useToast();

  return (
    <Dialog open={open} onOpenChange={setOpen}>
      <DialogTrigger asChild>
        <Button>
          <Plus /> Add customer
        </Button>
      </DialogTrigger>
      <DialogContent className="max-w-xl">
        <DialogHeader>
          <DialogTitle>New customer</DialogTitle>
          <DialogDescription>They start on a 14-day trial of the plan you pick.</DialogDescription>
        </DialogHeader>
        <CustomerForm
          submitLabel="Create customer"
          onCancel={() => setOpen(false)}
          onSubmit={async (values) => {
            await sleep(300);
            const customer = add(values);
            setOpen(false);
            toast({ title: "Customer created", description: `${customer.company} is on a trial.`, variant: "success" });
            navigate(`/customers/${customer.id}`);
          }}
        />
      </DialogContent>
    </Dialog>
  );
}
