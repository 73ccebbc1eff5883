/**
 * The admin API (`/api/v1/…`): who may reach it without credentials.
 *
 * @module
 */
import { z } from 'zod';

/** The `admin` section. */
export const AdminConfig = z
  .object({
    /**
     * Let unauthenticated callers (`auth.mode: none`, where everyone is the anonymous principal)
     * use the admin API, from loopback addresses only. Default false: with no inbound
     * authentication the admin API answers 403 `SWB_ERR_AUTH_ADMIN_REQUIRED` to everyone, since
     * it can add stdio servers — commands the gateway runs — and any local process could.
     */
    allowAnonymous: z.boolean().default(false),
  })
  .strict()
  .default({ allowAnonymous: false });
