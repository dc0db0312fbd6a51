import { useState } from "react";
import { NewProjectDialog } from "@/components/projects/NewProjectDialog";
import { ProjectBoard } from "@/components/projects/ProjectBoard";
import { Input } from "@/components/ui/input";
import { useDebounce } from "@/hooks/use-debounce";
import { useProjectStore } from "@/store/useProjectStore";

export default function Projects() {
  const projects = useProjectStore((s) => s.projects);
  const [query, setQuery] = useState("");
  const q = useDebounce(query.trim().toLowerCase());
  const visible = q ? projects.filter((p) => `${p.title} ${p.owner} ${p.tags.join(" ")}`.toLowerCase().includes(q)) : projects;
  const shipped = projects.filter((p) => p.stage === "shipped").length;

  return (
    <div className="grid gap-6">
      <div className="flex flex-col justify-between gap-4 sm:flex-row sm:items-end">
        <div>
          <h2 className="text-2xl font-semibold tracking-tight">Projects</h2>
          <p className="text-sm text-muted-foreground">
            {projects.length} projects, {shipped} shipped this quarter
          </p>
        </div>
        <div className="flex gap-2">
          <Input value={query} onChange={(e) => setQuery(e.target.value)} placeholder="Filter by title, owner or #tag" className="sm:w-64" aria-label="Filter projects" />
          <NewProjectDialog />
        </div>
      </div>
      <ProjectBoard projects={visible} />
    </div>
  );
}
