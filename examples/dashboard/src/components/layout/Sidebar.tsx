import { NavLink } from "react-router-dom";
import { ChevronsLeft, LifeBuoy } from "lucide-react";
import logo from "@/assets/logo.png";
import { Tooltip, TooltipContent, TooltipTrigger } from "@/components/ui/tooltip";
import { APP_NAME, APP_TAGLINE, NAV_ITEMS, SUPPORT_EMAIL } from "@/lib/constants";
import { cn } from "@/lib/utils";
import { useSettingsStore } from "@/store/useSettingsStore";

export function Sidebar() {
  const collapsed = useSettingsStore((s) => s.sidebarCollapsed);
  const toggle = useSettingsStore((s) => s.toggleSidebar);

  return (
    <aside className={cn("sticky top-0 hidden h-screen shrink-0 flex-col border-r bg-background transition-[width] md:flex", collapsed ? "w-16" : "w-60")}>
      <div className="flex h-16 items-center gap-2 border-b px-4">
        <img src={logo} alt="" width={28} height={28} className="size-7 rounded-md" />
        {!collapsed && (
          <div className="leading-tight">
            <p className="font-semibold">{APP_NAME}</p>
            <p className="text-[11px] text-muted-foreground">{APP_TAGLINE}</p>
          </div>
        )}
      </div>
      <nav className="flex flex-1 flex-col gap-1 p-2">
        {NAV_ITEMS.map(({ label, to, icon: Icon }) => {
          const link = (
            <NavLink
              key={to}
              to={to}
              end={to === "/"}
              className={({ isActive }) =>
                cn(
                  "flex items-center gap-3 rounded-md px-3 py-2 text-sm font-medium text-muted-foreground transition-colors hover:bg-accent hover:text-foreground",
                  isActive && "bg-primary/10 text-primary hover:bg-primary/10 hover:text-primary",
                  collapsed && "justify-center px-0",
                )
              }
            >
              <Icon className="size-4 shrink-0" />
              {!collapsed && label}
            </NavLink>
          );
          return collapsed ? (
            <Tooltip key={to}>
              <TooltipTrigger asChild>{link}</TooltipTrigger>
              <TooltipContent side="right">{label}</TooltipContent>
            </Tooltip>
          ) : (
            link
          );
        })}
      </nav>
      <div className="flex flex-col gap-1 border-t p-2">
        <a
          href={`mailto:${SUPPORT_EMAIL}`}
          className={cn("flex items-center gap-3 rounded-md px-3 py-2 text-sm text-muted-foreground hover:bg-accent", collapsed && "justify-center px-0")}
        >
          <LifeBuoy className="size-4" />
          {!collapsed && "Help & support"}
        </a>
        <button
          type="button"
          onClick={toggle}
          className={cn("flex items-center gap-3 rounded-md px-3 py-2 text-sm text-muted-foreground hover:bg-accent", collapsed && "justify-center px-0")}
          aria-label={collapsed ? "Expand sidebar" : "Collapse sidebar"}
        >
          <ChevronsLeft className={cn("size-4 transition-transform", collapsed && "rotate-180")} />
          {!collapsed && "Collapse"}
        </button>
      </div>
    </aside>
  );
}
