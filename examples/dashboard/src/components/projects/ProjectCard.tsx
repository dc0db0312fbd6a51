import { ArrowRight, Calendar, Trash2 } from "lucide-react";
import { Badge, type BadgeProps } from "@/components/ui/badge";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardFooter, CardHeader, CardTitle } from "@/components/ui/card";
import { Progress } from "@/components/ui/progress";
import { PRIORITY_LABELS } from "@/lib/constants";
import { formatDate } from "@/lib/format";
import { useProjectStore } from "@/store/useProjectStore";
import type { Priority, Project } from "@/types";

const PRIORITY_VARIANTS: Record<Priority, BadgeProps["variant"]> = {
  low: "secondary",
  medium: "default",
  high: "warning",
  urgent: "destructive",
};

export function ProjectCard({ project }: { project: Project }) {
  const advance = useProjectStore((s) => s.advance);
  const remove = useProjectStore((s) => s.remove);

  return (
    <Card className="animate-fade-in">
      <CardHeader className="gap-2 p-4">
        <div className="flex items-start justify-between gap-2">
          <CardTitle className="text-sm">{project.title}</CardTitle>
          <Badge variant={PRIORITY_VARIANTS[project.priority]}>{PRIORITY_LABELS[project.priority]}</Badge>
        </div>
        {project.description && <p className="text-xs text-muted-foreground">{project.description}</p>}
      </CardHeader>
      <CardContent className="grid gap-3 px-4 pb-3">
        <Progress value={project.progress} label={`${project.title} progress`} />
        <div className="flex flex-wrap gap-1">
          {project.tags.map((tag) => (
            <Badge key={tag} variant="outline" className="text-[10px]">
              #{tag}
            </Badge>
          ))}
        </div>
      </CardContent>
      <CardFooter className="justify-between px-4 pb-4 text-xs text-muted-foreground">
        <span className="flex items-center gap-1">
          <Calendar className="size-3" /> {formatDate(project.dueDate, "MMM d")} · {project.owner.split(" ")[0]}
        </span>
        <span className="flex gap-1">
          <Button variant="ghost" size="icon" className="size-7" onClick={() => remove(project.id)} aria-label="Delete project">
            <Trash2 />
          </Button>
          {project.stage !== "shipped" && (
            <Button variant="ghost" size="icon" className="size-7" onClick={() => advance(project.id)} aria-label="Move to the next stage">
              <ArrowRight />
            </Button>
          )}
        </span>
      </CardFooter>
    </Card>
  );
}
