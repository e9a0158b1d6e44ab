"""A full snapshot of the public schema from the catalogue: what two databases must share to behave alike.

Relations (kind, row-level security flags, options, ACL, owner, comment), columns, constraints,
indexes, triggers, policies, routines (definition, ACL, owner, comment), types, views, sequences, the
schema's own ACL, and the app's roles. Names only, never OIDs, so two databases compare. A default
ACL (null) and the same privileges spelt out compare equal (acldefault).
"""

from __future__ import annotations

import psycopg

QUERIES = {
    "schema": """
        select nspname, array(select unnest(coalesce(nspacl, acldefault('n'::"char", nspowner)))::text order by 1),
               pg_get_userbyid(nspowner), obj_description(oid, 'pg_namespace')
          from pg_namespace where nspname = 'public'
    """,
    "relations": """
        select c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity, c.relpersistence,
               coalesce(array(select unnest(c.reloptions) order by 1), '{}'),
               array(select unnest(coalesce(c.relacl, acldefault(case c.relkind when 'S' then 's' else 'r' end::"char", c.relowner)))::text order by 1),
               pg_get_userbyid(c.relowner), obj_description(c.oid, 'pg_class')
          from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relname not like 'alembic_version%%'
         order by 1
    """,
    "columns": """
        select c.relname, a.attname, format_type(a.atttypid, a.atttypmod), a.attnotnull, a.attidentity,
               a.attgenerated, pg_get_expr(d.adbin, d.adrelid),
               coalesce(array(select unnest(a.attacl)::text order by 1), '{}'), col_description(c.oid, a.attnum)
          from pg_attribute a
          join pg_class c on c.oid = a.attrelid
          left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
         where c.relnamespace = 'public'::regnamespace and a.attnum > 0 and not a.attisdropped
           and c.relkind in ('r', 'v', 'm', 'p', 'c', 'f') and c.relname not like 'alembic_version%%'
         order by 1, 2
    """,
    # Apart from the columns themselves: the order matters only to SELECT * and row types.
    "column_order": """
        select c.relname, array_agg(a.attname::text order by a.attnum)
          from pg_attribute a join pg_class c on c.oid = a.attrelid
         where c.relnamespace = 'public'::regnamespace and a.attnum > 0 and not a.attisdropped
           and c.relkind in ('r', 'v', 'm', 'p', 'c', 'f') and c.relname not like 'alembic_version%%'
         group by 1 order by 1
    """,
    "constraints": """
        select conrelid::regclass::text, conname, contype, pg_get_constraintdef(oid), convalidated,
               obj_description(oid, 'pg_constraint')
          from pg_constraint where connamespace = 'public'::regnamespace and conrelid <> 0
           and conrelid::regclass::text not like 'alembic_version%%'
         order by 1, 2
    """,
    "indexes": """
        select tablename, indexname, indexdef from pg_indexes
         where schemaname = 'public' and tablename not like 'alembic_version%%' order by 1, 2
    """,
    "triggers": """
        select tgrelid::regclass::text, tgname, pg_get_triggerdef(oid), tgenabled, obj_description(oid, 'pg_trigger')
          from pg_trigger where not tgisinternal
           and tgrelid in (select oid from pg_class where relnamespace = 'public'::regnamespace)
         order by 1, 2
    """,
    "policies": """
        select tablename, policyname, permissive, array(select unnest(roles) order by 1), cmd, qual, with_check
          from pg_policies where schemaname = 'public' order by 1, 2
    """,
    "routines": """
        select p.oid::regprocedure::text, pg_get_functiondef(p.oid),
               array(select unnest(coalesce(p.proacl, acldefault('f'::"char", p.proowner)))::text order by 1),
               pg_get_userbyid(p.proowner), obj_description(p.oid, 'pg_proc')
          from pg_proc p where p.pronamespace = 'public'::regnamespace and p.prokind in ('f', 'p', 'w')
         order by 1
    """,
    "aggregates": """
        select p.oid::regprocedure::text from pg_proc p
         where p.pronamespace = 'public'::regnamespace and p.prokind = 'a' order by 1
    """,
    "types": """
        select t.typname, t.typtype, pg_get_userbyid(t.typowner), obj_description(t.oid, 'pg_type'),
               array(select unnest(coalesce(t.typacl, acldefault('T'::"char", t.typowner)))::text order by 1)
          from pg_type t
          left join pg_class c on c.oid = t.typrelid
         where t.typnamespace = 'public'::regnamespace and (c.relkind is null or c.relkind = 'c')
           and t.typname not like '\\_%%'
         order by 1
    """,
    "views": """
        select c.relname, pg_get_viewdef(c.oid, true) from pg_class c
         where c.relnamespace = 'public'::regnamespace and c.relkind in ('v', 'm') order by 1
    """,
    "sequences": """
        select sequencename, data_type::text, start_value, increment_by, cycle from pg_sequences
         where schemaname = 'public' order by 1
    """,
    "roles": """
        select rolname, rolsuper, rolinherit, rolcreaterole, rolcreatedb, rolcanlogin, rolbypassrls,
               shobj_description(oid, 'pg_authid'),
               array(select m.roleid::regrole::text from pg_auth_members m where m.member = r.oid order by 1)
          from pg_roles r where rolname like 'weekly\\_trends\\_%%' order by 1
    """,
}


def snapshot(conn: psycopg.Connection) -> dict[str, list[tuple]]:
    return {name: conn.execute(query).fetchall() for name, query in QUERIES.items()}


def snapshot_of(url: str) -> dict[str, list[tuple]]:
    with psycopg.connect(url) as conn:
        return snapshot(conn)


def differences(before: dict[str, list[tuple]], after: dict[str, list[tuple]]) -> dict[str, dict[str, list]]:
    """Per section, the rows only before and only after (empty when the snapshots are equal)."""
    out = {}
    for name in QUERIES:
        gone = [r for r in before[name] if r not in after[name]]
        new = [r for r in after[name] if r not in before[name]]
        if gone or new or before[name] != after[name]:
            out[name] = {"only_before": gone, "only_after": new}
    return out
