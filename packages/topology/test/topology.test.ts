import { components, publicComponents, subscribers, subscribersValue, topology, upstreamsValue } from '@blog/topology';
import { describe, expect, it } from 'vitest';

describe('the topology', () => {
  it('when the components are listed, then each name is used once', () => {
    const names = components.map((component) => component.name);

    expect(new Set(names).size).toBe(names.length);
  });

  it('when `pnpm start` runs every component but the client on one machine, then no two share a port', () => {
    const onOneMachine = components.filter((component) => component.name !== 'client').map((component) => component.port);

    expect(new Set(onOneMachine).size).toBe(onOneMachine.length);
  });

  it('when a component is public or pushed to, then the manifests know its Service', () => {
    const withoutService = [...publicComponents, ...subscribers]
      .filter((component) => component.kubernetesService === undefined)
      .map((component) => component.name);

    expect(withoutService).toEqual([]);
  });

  it('when code tries to change it, then it stays as written', () => {
    const posts = topology.posts as { port: number };

    expect(() => (posts.port = 1)).toThrow(TypeError);
    expect(() => (components as unknown as unknown[]).push({})).toThrow(TypeError);
    expect(topology.posts.port).toBe(components.find((component) => component.name === 'posts')!.port);
  });

  it('when SUBSCRIBERS and UPSTREAMS are written for a host, then each subscriber gets its events path and each public Service its URL', () => {
    const hostOf = (name: string) => `${name}.internal`;

    expect(subscribersValue((component) => `http://${hostOf(component.name)}:${component.port}`).split(',')).toEqual(
      subscribers.map((component) => `${component.name}=http://${hostOf(component.name)}:${component.port}/events`),
    );
    expect(
      upstreamsValue((component) => (component.name === 'client' ? undefined : `http://${hostOf(component.name)}:${component.port}`)).split(
        ',',
      ),
    ).toEqual(
      publicComponents
        .filter((component) => component.name !== 'client')
        .map((component) => `${component.kubernetesService}=http://${hostOf(component.name)}:${component.port}`),
    );
  });
});
