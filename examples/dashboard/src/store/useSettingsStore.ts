import { create } from "zustand";
import { persist } from "zustand/middleware";
import type { Theme } from "@/types";
import type { ProfileFormValues } from "@/lib/schemas";

export interface NotificationPrefs {
  weeklyDigest: boolean;
  failedPayments: boolean;
  newSignups: boolean;
  productUpdates: boolean;
}

interface SettingsState {
  theme: Theme;
  sidebarCollapsed: boolean;
  profile: ProfileFormValues;
  notifications: NotificationPrefs;
  setTheme: (theme: Theme) => void;
  toggleSidebar: () => void;
  updateProfile: (profile: ProfileFormValues) => void;
  setNotification: (key: keyof NotificationPrefs, value: boolean) => void;
}

export const useSettingsStore = create<SettingsState>()(
  persist(
    (set) => ({
      theme: "system",
      sidebarCollapsed: false,
      profile: {
        fullName: "Grace Lee",
        email: "grace@orbit.example",
        company: "Orbit",
        timezone: "Europe/Berlin",
        bio: "Revenue operations. Likes tidy dashboards.",
      },
      notifications: { weeklyDigest: true, failedPayments: true, newSignups: false, productUpdates: true },
      setTheme: (theme) => set({ theme }),
      toggleSidebar: () => set((s) => ({ sidebarCollapsed: !s.sidebarCollapsed })),
      updateProfile: (profile) => set({ profile }),
      setNotification: (key, value) => set((s) => ({ notifications: { ...s.notifications, [key]: value } })),
    }),
    { name: "orbit-settings" },
  ),
);
