/** Placeholder: the downstream-credentials section's schema (issue 5) lives here. */
import { z } from 'zod';

export const downstreamSchema = z.unknown();
