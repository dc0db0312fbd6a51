import { Monitor, Moon, Sun } from "lucide-react";
import { NotificationSettings } from "@/components/settings/NotificationSettings";
import { ProfileForm } from "@/components/settings/ProfileForm";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { useTheme } from "@/hooks/use-theme";
import { useToast } from "@/hooks/use-toast";
import { cn } from "@/lib/utils";
import { useCustomerStore } from "@/store/useCustomerStore";
import type { Theme } from "@/types";

const THEMES: { value: Theme; label: string; icon: typeof Sun }[] = [
  { value: "light", label: "Light", icon: Sun },
  { value: "dark", label: "Dark", icon: Moon },
  { value: "system", label: "System", icon: Monitor },
];

export default function Settings() {
  const { theme, setTheme } = useTheme();
  const resetCustomers = useCustomerStore((s) => s.reset);
  const { toast } = useToast();

  return (
    <div className="grid max-w-3xl gap-6">
      <div>
        <h2 className="text-2xl font-semibold tracking-tight">Settings</h2>
        <p className="text-sm text-muted-foreground">Your profile, appearance and notifications.</p>
      </div>
      <ProfileForm />
      <Card>
        <CardHeader>
          <CardTitle>Appearance</CardTitle>
          <CardDescription>Follow your system, or pick a side.</CardDescription>
        </CardHeader>
        <CardContent className="grid grid-cols-3 gap-3">
          {THEMES.map(({ value, label, icon: Icon }) => (
            <button
              key={value}
              type="button"
              onClick={() => setTheme(value)}
              aria-pressed={theme === value}
              className={cn(
                "flex flex-col items-center gap-2 rounded-lg border p-4 text-sm transition-colors hover:bg-accent",
                theme === value && "border-primary bg-primary/5 text-primary",
              )}
            >
              <Icon className="size-5" />
              {label}
            </button>
          ))}
        </CardContent>
      </Card>
      <NotificationSettings />
      <Card className="border-destructive/40">
        <CardHeader>
          <CardTitle>Demo data</CardTitle>
          <CardDescription>Put the customer list back the way it shipped.</CardDescription>
        </CardHeader>
        <CardContent>
          <Button
            variant="destructive"
            onClick={() => {
              resetCustomers();
              toast({ title: "Customers reset", description: "The demo data is back." });
            }}
          >
            Reset customers
          </Button>
        </CardContent>
      </Card>
    </div>
  );
}
