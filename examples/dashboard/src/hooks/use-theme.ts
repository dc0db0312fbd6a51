import { useEffect } from "react";
import { useMediaQuery } from "@/hooks/use-media-query";
import { useSettingsStore } from "@/store/useSettingsStore";

export function useTheme() {
  const theme = useSettingsStore((s) => s.theme);
  const setTheme = useSettingsStore((s) => s.setTheme);
  const prefersDark = useMediaQuery("(prefers-color-scheme: dark)");
  const resolved = theme === "system" ? (prefersDark ? "dark" : "light") : theme;

  useEffect(() => {
    document.documentElement.classList.toggle("dark", resolved === "dark");
  }, [resolved]);

  return { theme, resolved, setTheme };
}
