import { create } from "zustand";
import { persist } from "zustand/middleware";
import { projects as seed } from "@/lib/mock-data";
import type { ProjectFormValues } from "@/lib/schemas";
import { createId } from "@/lib/utils";
import type { Project, ProjectStage } from "@/types";

const STAGES: ProjectStage[] = ["backlog", "active", "review", "shipped"];

interface ProjectState {
  projects: Project[];
  add: (values: ProjectFormValues) => void;
  advance: (id: string) => void;
  remove: (id: string) => void;
}

export const useProjectStore = create<ProjectState>()(
  persist(
    (set) => ({
      projects: seed,
      add: (values) =>
        set((s) => ({
          projects: [
            { ...values, description: values.description ?? "", id: createId("prj"), stage: "backlog", progress: 0, tags: [] },
            ...s.projects,
          ],
        })),
      advance: (id) =>
        set((s) => ({
          projects: s.projects.map((p) => {
            if (p.id !== id) return p;
            const stage = STAGES[Math.min(STAGES.indexOf(p.stage) + 1, STAGES.length - 1)]!;
            return { ...p, stage, progress: stage === "shipped" ? 100 : Math.max(p.progress, stage === "review" ? 85 : 10) };
          }),
        })),
      remove: (id) => set((s) => ({ projects: s.projects.filter((p) => p.id !== id) })),
    }),
    { name: "orbit-projects" },
  ),
);
