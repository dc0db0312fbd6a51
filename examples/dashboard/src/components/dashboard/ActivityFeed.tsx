import { CreditCard, FolderKanban, LifeBuoy, UserPlus, type LucideIcon } from "lucide-react";
import { Card, CardContent, CardDescription, CardHeader, CardTitle } from "@/components/ui/card";
import { Skeleton } from "@/components/ui/skeleton";
import { timeAgo } from "@/lib/format";
import type { Activity } from "@/types";

const ICONS: Record<Activity["kind"], LucideIcon> = {
  payment: CreditCard,
  signup: UserPlus,
  project: FolderKanban,
  support: LifeBuoy,
};

export function ActivityFeed({ items }: { items: Activity[] | undefined }) {
  return (
    <Card className="col-span-full lg:col-span-3">
      <CardHeader>
        <CardTitle>Activity</CardTitle>
        <CardDescription>What happened across your accounts</CardDescription>
      </CardHeader>
      <CardContent>
        <ol className="relative grid gap-5 border-l pl-6">
          {!items
            ? Array.from({ length: 5 }, (_, i) => <Skeleton key={i} className="h-10" />)
            : items.map((item) => {
                const Icon = ICONS[item.kind];
                return (
                  <li key={item.id} className="relative">
                    <span className="absolute -left-[34px] top-0.5 flex size-5 items-center justify-center rounded-full border bg-background">
                      <Icon className="size-3 text-primary" />
                    </span>
                    <p className="text-sm">
                      <span className="font-medium">{item.actor}</span> {item.action} <span className="font-medium">{item.target}</span>
                    </p>
                    <p className="text-xs text-muted-foreground">{timeAgo(item.at)}</p>
                  </li>
                );
              })}
        </ol>
      </CardContent>
    </Card>
  );
}
