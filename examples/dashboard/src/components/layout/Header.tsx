import { useState } from "react";
import { useLocation, useNavigate } from "react-router-dom";
import { Bell, LogOut, Monitor, Moon, Search, Sun, User } from "lucide-react";
import { Avatar, AvatarFallback } from "@/components/ui/avatar";
import { Button } from "@/components/ui/button";
import {
  DropdownMenu,
  DropdownMenuContent,
  DropdownMenuItem,
  DropdownMenuLabel,
  DropdownMenuSeparator,
  DropdownMenuTrigger,
} from "@/components/ui/dropdown-menu";
import { Input } from "@/components/ui/input";
import { useTheme } from "@/hooks/use-theme";
import { useToast } from "@/hooks/use-toast";
import { NAV_ITEMS } from "@/lib/constants";
import { initials } from "@/lib/utils";
import { useSettingsStore } from "@/store/useSettingsStore";

export function Header() {
  const { pathname } = useLocation();
  const navigate = useNavigate();
  const { theme, setTheme } = useTheme();
  const { toast } = useToast();
  const profile = useSettingsStore((s) => s.profile);
  const [query, setQuery] = useState("");
  const current = NAV_ITEMS.find((item) => (item.to === "/" ? pathname === "/" : pathname.startsWith(item.to)));

  const ThemeIcon = theme === "dark" ? Moon : theme === "light" ? Sun : Monitor;
  const nextTheme = theme === "light" ? "dark" : theme === "dark" ? "system" : "light";

  return (
    <header className="sticky top-0 z-30 flex h-16 items-center gap-4 border-b bg-background/80 px-4 backdrop-blur md:px-8">
      <h1 className="text-lg font-semibold">{current?.label ?? "Orbit"}</h1>
      <form
        className="relative ml-auto hidden w-72 sm:block"
        onSubmit={(e) => {
          e.preventDefault();
          navigate(`/customers?q=${encodeURIComponent(query)}`);
        }}
      >
        <Search className="absolute left-2.5 top-2.5 size-4 text-muted-foreground" />
        <Input value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Search customers…" className="pl-8" aria-label="Search customers" />
      </form>
      <Button variant="ghost" size="icon" onClick={() => setTheme(nextTheme)} aria-label={`Theme: ${theme}`}>
        <ThemeIcon />
      </Button>
      <Button variant="ghost" size="icon" aria-label="Notifications" onClick={() => toast({ title: "You're all caught up", description: "No new notifications." })}>
        <Bell />
      </Button>
      <DropdownMenu>
        <DropdownMenuTrigger asChild>
          <button type="button" className="rounded-full focus:outline-none focus:ring-2 focus:ring-ring" aria-label="Account">
            <Avatar>
              <AvatarFallback>{initials(profile.fullName)}</AvatarFallback>
            </Avatar>
          </button>
        </DropdownMenuTrigger>
        <DropdownMenuContent align="end" className="w-56">
          <DropdownMenuLabel>
            <p>{profile.fullName}</p>
            <p className="text-xs font-normal text-muted-foreground">{profile.email}</p>
          </DropdownMenuLabel>
          <DropdownMenuSeparator />
          <DropdownMenuItem onSelect={() => navigate("/settings")}>
            <User /> Profile
          </DropdownMenuItem>
          <DropdownMenuItem onSelect={() => toast({ title: "Signed out", description: "This is a demo, so you are still here." })}>
            <LogOut /> Sign out
          </DropdownMenuItem>
        </DropdownMenuContent>
      </DropdownMenu>
    </header>
  );
}
