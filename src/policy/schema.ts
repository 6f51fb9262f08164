/** Placeholder: the policy section's schema (issue 4) lives here. */
import { z } from 'zod';

export const policySchema = z.unknown();
