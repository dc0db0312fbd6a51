import { z } from "zod";

export const customerSchema = z.object({
  name: z.string().trim().min(2, "Enter the contact's full name"),
  company: z.string().trim().min(2, "Enter a company name"),
  email: z.email("Enter a valid email address"),
  plan: z.enum(["starter", "growth", "scale", "enterprise"]),
  seats: z.number({ error: "Seats must be a number" }).int().min(1, "At least one seat").max(500, "Contact sales above 500 seats"),
  country: z.string().min(1, "Pick a country"),
  notes: z.string().max(280, "Keep notes under 280 characters").optional(),
});

export type CustomerFormValues = z.infer<typeof customerSchema>;

export const profileSchema = z.object({
  fullName: z.string().trim().min(2, "Your name is too short"),
  email: z.email("Enter a valid email address"),
  company: z.string().trim().min(2, "Enter your company"),
  timezone: z.string().min(1),
  bio: z.string().max(160, "160 characters at most").optional(),
});

export type ProfileFormValues = z.infer<typeof profileSchema>;

export const projectSchema = z.object({
  title: z.string().trim().min(3, "Give the project a short title"),
  description: z.string().trim().max(200).optional(),
  priority: z.enum(["low", "medium", "high", "urgent"]),
  owner: z.string().trim().min(2, "Who owns it?"),
  dueDate: z.string().min(1, "Pick a due date"),
});

export type ProjectFormValues = z.infer<typeof projectSchema>;
