/**
 * Which request paths an entry point may route at all.
 *
 * A path is routed on one reading and then read again by every hop after it: a proxy library that
 * resolves `..` while building the upstream URL, an nginx that decodes `%2e` and `%2f` before
 * matching its locations, a framework that splits `;` parameters off or takes `\` for `/`. When
 * two hops read a path differently, the route chosen is not the route taken, and a public prefix
 * leads to an internal route (`/posts/%2e%2e/metrics`). A path without any of the constructs below
 * has one reading only, so an entry that refuses them routes on exactly the path its upstream gets.
 * No public route of the blog needs any of them.
 */
export function pathRefusal(target: string): string | undefined {
  // Absolute-form (`GET http://host/…`) and `*` targets are for proxies and OPTIONS, not for us.
  if (!target.startsWith('/')) return 'no leading "/" (an absolute-form or * target)';
  const path = target.split(/[?#]/, 1)[0]!;
  // %2e, %2f and %5c in either case, also encoded again (%252e, %25252f, …).
  if (/%(?:25)*(?:2e|2f|5c)/i.test(path)) return 'an encoded dot, slash or backslash';
  if (path.includes('\\')) return 'a backslash';
  if (path.includes(';')) return 'a ";" parameter';
  if (path.includes('//')) return 'an empty segment ("//")';
  if (path.split('/').some((segment) => segment === '.' || segment === '..')) return 'a dot segment';
  return undefined;
}
