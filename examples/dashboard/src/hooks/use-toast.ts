import { create } from "zustand";
import { createId } from "@/lib/utils";

export type ToastVariant = "default" | "success" | "destructive";

export interface Toast {
  id: string;
  title: string;
  description?: string;
  variant: ToastVariant;
}

interface ToastState {
  toasts: Toast[];
  push: (toast: Omit<Toast, "id" | "variant"> & { variant?: ToastVariant }) => void;
  dismiss: (id: string) => void;
}

export const useToastStore = create<ToastState>((set, get) => ({
  toasts: [],
  push: (toast) => {
    const id = createId("toast");
    const next: Toast = { ...toast, variant: toast.variant ?? "default", id };
    set({ toasts: [...get().toasts, next].slice(-3) });
    setTimeout(() => get().dismiss(id), 4000);
  },
  dismiss: (id) => set({ toasts: get().toasts.filter((t) => t.id !== id) }),
}));

export function useToast() {
  const push = useToastStore((s) => s.push);
  return { toast: push };
}
