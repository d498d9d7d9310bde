import { baseConfigSchema, parseConfig } from '@blog/common';
import { defaultIngressFile } from '@blog/routes';
import { topology, upstreamsValue } from '@blog/topology';
import { z } from 'zod';

// Each Service of the Ingress at its component's default port on this machine; the client has no
// server of its own there (CLIENT_DIR, or an UPSTREAMS that names one).
const localUpstreams = upstreamsValue((component) => (component.name === 'client' ? undefined : `http://localhost:${component.port}`));

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

export const gatewayConfigSchema = baseConfigSchema('gateway', topology.gateway.port).extend({
  INGRESS_FILE: z.string().min(1).default(defaultIngressFile),
  UPSTREAMS: upstreamsSchema,
  /** Serve the built client from this folder for the Ingress's client Service, instead of proxying. */
  CLIENT_DIR: z.string().min(1).optional(),
  /** The Service in the Ingress that CLIENT_DIR stands in for. */
  CLIENT_SERVICE: z.string().min(1).default(topology.client.kubernetesService!),
});
export type GatewayConfig = z.infer<typeof gatewayConfigSchema>;

export const loadGatewayConfig = (env: NodeJS.ProcessEnv = process.env) => parseConfig(gatewayConfigSchema, env);
