import { ProjectCard } from "@/components/projects/ProjectCard";
import { STAGE_LABELS } from "@/lib/constants";
import { groupBy } from "@/lib/utils";
import type { Project, ProjectStage } from "@/types";

const STAGES: ProjectStage[] = ["backlog", "active", "review", "shipped"];

export function ProjectBoard({ projects }: { projects: Project[] }) {
  const byStage = groupBy(projects, (p) => p.stage);
  return (
    <div className="grid gap-4 md:grid-cols-2 xl:grid-cols-4">
      {STAGES.map((stage) => {
        const items = byStage[stage] ?? [];
        return (
          <section key={stage} className="flex flex-col gap-3 rounded-lg bg-muted/60 p-3" aria-label={STAGE_LABELS[stage]}>
            <header className="flex items-center justify-between px-1">
              <h2 className="text-sm font-semibold">{STAGE_LABELS[stage]}</h2>
              <span className="rounded-full bg-background px-2 text-xs text-muted-foreground">{items.length}</span>
            </header>
            {items.map((project) => (
              <ProjectCard key={project.id} project={project} />
            ))}
            {items.length === 0 && <p className="px-1 py-6 text-center text-xs text-muted-foreground">Nothing here yet</p>}
          </section>
        );
      })}
    </div>
  );
}
