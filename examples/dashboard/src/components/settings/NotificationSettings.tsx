import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Label } from "@/components/ui/label";
import { Separator } from "@/components/ui/separator";
import { Switch } from "@/components/ui/switch";
import { useSettingsStore, type NotificationPrefs } from "@/store/useSettingsStore";

const OPTIONS: { key: keyof NotificationPrefs; title: string; description: string }[] = [
  { key: "weeklyDigest", title: "Weekly digest", description: "A Monday summary of revenue, signups and churn." },
  { key: "failedPayments", title: "Failed payments", description: "Right away, when a card is declined." },
  { key: "newSignups", title: "New signups", description: "Every time a team starts a trial." },
  { key: "productUpdates", title: "Product updates", description: "Occasional news about Orbit." },
];

export function NotificationSettings() {
  const notifications = useSettingsStore((s) => s.notifications);
  const setNotification = useSettingsStore((s) => s.setNotification);
  return (
    <Card>
      <CardHeader>
        <CardTitle>Notifications</CardTitle>
        <CardDescription>Choose what lands in your inbox.</CardDescription>
      </CardHeader>
      <CardContent className="grid gap-4">
        {OPTIONS.map((option, i) => (
          <div key={option.key} className="grid gap-4">
            {i > 0 && <Separator />}
            <div className="flex items-center justify-between gap-4">
              <div className="grid gap-1">
                <Label htmlFor={option.key}>{option.title}</Label>
                <p className="text-sm text-muted-foreground">{option.description}</p>
              </div>
              <Switch id={option.key} checked={notifications[option.key]} onCheckedChange={(v) => setNotification(option.key, v)} />
            </div>
          </div>
        ))}
      </CardContent>
    </Card>
  );
}
