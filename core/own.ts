/**
 * Lookups by a name that comes from outside (a request, a file, a command line, another server): only a
 * record's own members count. `name in record` and `record[name]` also find Object.prototype's members
 * (`constructor`, `toString`, `__proto__`…), which turned unknown names into known ones.
 */

/** Whether `name` is one of `record`'s own members. */
export function hasOwn(record: object, name: PropertyKey): boolean {
  return Object.hasOwn(record, name);
}

/** `record[name]` if `name` is an own member of `record`; undefined otherwise. */
export function own<V>(record: Readonly<Record<string, V>>, name: string): V | undefined {
  return Object.hasOwn(record, name) ? record[name] : undefined;
}
