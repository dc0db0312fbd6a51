import { useForm, useWatch } from "react-hook-form";
import { zodResolver } from "@hookform/resolvers/zod";
import { Button } from "@/components/ui/button";
import { Card, CardContent, CardDescription, CardFooter, CardHeader, CardTitle } from "@/components/ui/card";
import { FormField } from "@/components/ui/form-field";
import { Input } from "@/components/ui/input";
import { Select } from "@/components/ui/select";
import { Textarea } from "@/components/ui/textarea";
import { useToast } from "@/hooks/use-toast";
import { profileSchema, type ProfileFormValues } from "@/lib/schemas";
import { useSettingsStore } from "@/store/useSettingsStore";

const TIMEZONES = ["America/Los_Angeles", "America/New_York", "Europe/London", "Europe/Berlin", "Asia/Kolkata", "Asia/Tokyo"].map((tz) => ({
  value: tz,
  label: tz.replace("_", " "),
}));

export function ProfileForm() {
  const profile = useSettingsStore((s) => s.profile);
  const updateProfile = useSettingsStore((s) => s.updateProfile);
  const { toast } = useToast();
  const {
    register,
    handleSubmit,
    reset,
    control,
    formState: { errors, isDirty },
  } = useForm<ProfileFormValues>({ resolver: zodResolver(profileSchema), defaultValues: profile });
  const bio = useWatch({ control, name: "bio" }) ?? "";

  return (
    <Card>
      <form
        onSubmit={handleSubmit((values) => {
          updateProfile(values);
          reset(values);
          toast({ title: "Profile saved", variant: "success" });
        })}
        noValidate
      >
        <CardHeader>
          <CardTitle>Profile</CardTitle>
          <CardDescription>How you appear to your team and on invoices.</CardDescription>
        </CardHeader>
        <CardContent className="grid gap-4 sm:grid-cols-2">
          <FormField id="fullName" label="Full name" error={errors.fullName?.message}>
            <Input id="fullName" aria-invalid={!!errors.fullName} {...register("fullName")} />
          </FormField>
          <FormField id="profile-email" label="Email" error={errors.email?.message}>
            <Input id="profile-email" type="email" aria-invalid={!!errors.email} {...register("email")} />
          </FormField>
          <FormField id="profile-company" label="Company" error={errors.company?.message}>
            <Input id="profile-company" aria-invalid={!!errors.company} {...register("company")} />
          </FormField>
          <FormField id="timezone" label="Time zone">
            <Select id="timezone" options={TIMEZONES} {...register("timezone")} />
          </FormField>
          <FormField id="bio" label="Bio" error={errors.bio?.message} hint={`${bio.length}/160`} className="sm:col-span-2">
            <Textarea id="bio" rows={3} {...register("bio")} />
          </FormField>
        </CardContent>
        <CardFooter className="justify-end gap-2 border-t pt-6">
          <Button type="button" variant="outline" disabled={!isDirty} onClick={() => reset(profile)}>
            Discard
          </Button>
          <Button type="submit" disabled={!isDirty}>
            Save changes
          </Button>
        </CardFooter>
      </form>
    </Card>
  );
}
