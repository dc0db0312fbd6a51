import { Link } from "react-router-dom";
import { Compass } from "lucide-react";
import { Button } from "@/components/ui/button";
import { APP_NAME } from "@/lib/constants";

export default function NotFound() {
  return (
    <div className="flex min-h-screen flex-col items-center justify-center gap-4 bg-muted/40 p-6 text-center">
      <div className="rounded-full bg-primary/10 p-4">
        <Compass className="size-8 text-primary" />
      </div>
      <p className="text-sm font-semibold text-primary">404</p>
      <h1 className="text-3xl font-bold tracking-tight">This page drifted out of orbit</h1>
      <p className="max-w-md text-muted-foreground">The address may be mistyped, or the page was moved. Head back to the {APP_NAME} overview.</p>
      <Button asChild>
        <Link to="/">Back to overview</Link>
      </Button>
    </div>
  );
}
