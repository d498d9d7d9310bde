import { baseConfigSchema, parseConfig } from '@blog/common';
import { defaultIngressFile } from '@blog/routes';
import { z } from 'zod';

const localUpstreams = 'posts-clusterip-srv=http://localhost:4000,comments-srv=http://localhost:4001,query-srv=http://localhost:4002';

/** `UPSTREAMS=service=url,...`: where each Kubernetes Service named in the Ingress is reachable here. */
export const upstreamsSchema = z
  .string()
  .default(localUpstreams)
  .transform((value, ctx) => {
    const upstreams = new Map<string, string>();
    for (const item of value.split(',').map((part) => part.trim()).filter(Boolean)) {
      const match = /^([a-z0-9][a-z0-9-]*)=(https?:\/\/\S+)$/.exec(item);
      if (!match || !URL.canParse(match[2]!)) ctx.addIssue({ code: 'custom', message: `"${item}" is not service=http(s)-url` });
      else upstreams.set(match[1]!, match[2]!.replace(/\/+$/, ''));
    }
    return upstreams;
  });

export const gatewayConfigSchema = baseConfigSchema('gateway', 3000).extend({
  INGRESS_FILE: z.string().min(1).default(defaultIngressFile),
  UPSTREAMS: upstreamsSchema,
  /** Serve the built client from this folder for the Ingress's client Service, instead of proxying. */
  CLIENT_DIR: z.string().min(1).optional(),
  /** The Service in the Ingress that CLIENT_DIR stands in for. */
  CLIENT_SERVICE: z.string().min(1).default('client-srv'),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export const loadGatewayConfig = (env: NodeJS.ProcessEnv = process.env) => parseConfig(gatewayConfigSchema, env);
