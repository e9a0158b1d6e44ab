"""results.csv: checked against the line items and students, then mirrored into oneroster_result.

Each result's quiz_attempt or assignment_submission row is written afterwards by derivation.derive()."""

from __future__ import annotations

from web.oneroster.derivation import delete_targets, sequences
from web.oneroster.staging import Staging

SCORE_STATUSES = ("exempt", "fully graded", "not submitted", "partially graded", "submitted")


def results(job: Staging) -> None:
    job.x("analyze oneroster_student")
    # Results of students erased before (a tombstone, no mapping): skipped, never a bad row.
    if not job.options.allow_erased:
        job.summary.erased_results = job.x("""
          delete from stg_results t
           where not exists (select from oneroster_student m
                              where m.source = %(source)s and m.sourced_id = t.student_sourced_id)
             and exists (select from erased_source_record e
                          where e.source_hash = erased_source_hash(%(source)s, t.student_sourced_id))
        """)
    statuses = "'{" + ",".join(f'"{s}"' for s in SCORE_STATUSES) + "}'"
    # Each text is checked and typed once, in the inner query; typed values exist only where the text is
    # valid (a statement's conditions may run in any order: a cast must never meet a bad row's text).
    # OFFSET 0 keeps that query a plan node of its own: pulled up, each reference to score_value or
    # score_date_value below would rerun its regular expression (up to seven a row; 0.78 s of a 3.1 s import).
    base = """(select t.*, lk.kind, lk.result_value_max, lk.sourced_id as line_item_found,
                      st.sourced_id as student_found, m.kind as old_kind, m.target_id as old_target_id,
                      lower(t.score_status) as score_status_value,
                      case when oneroster_is_number(t.score) then t.score::numeric end as score_value,
                      case when t.score_date <> '' and oneroster_is_datetime(t.score_date) then t.score_date
                           end as score_date_value
                 from stg_results t
                 left join li_kind lk on lk.sourced_id = t.line_item_sourced_id
                 left join oneroster_student st on st.source = %(source)s and st.sourced_id = t.student_sourced_id
                 left join oneroster_result m on m.source = %(source)s and m.sourced_id = t.sourced_id
               offset 0)"""
    pct = (
        "case when s.result_value_max is null then round(s.score_value, 2)"
        " else round(s.score_value / s.result_value_max * 100, 2) end"
    )
    job.checked(
        "results",
        "",
        f"""
      when s.score_status_value <> all({statuses}::text[])
        then 'unknown scoreStatus ' || quote_literal(s.score_status)
      when s.line_item_found is null then 'unknown line item ' || quote_literal(s.line_item_sourced_id)
      when s.student_found is null then 'unknown student ' || quote_literal(s.student_sourced_id)
      when s.score <> '' and s.score_value is null then 'bad number in score ' || quote_literal(s.score)
      when s.score = '' and s.score_status_value = 'fully graded' then 'fully graded without a score'
      when s.score_date <> '' and s.score_date_value is null
        then 'bad date in scoreDate ' || quote_literal(s.score_date)
      when s.score_date = '' and s.score_status_value = 'fully graded' then 'fully graded without a scoreDate'
      -- the score tables hold instants from 1900 to 2199 (a day's margin for any time zone)
      when s.score_date_value is not null and substr(s.score_date_value, 1, 10) not between '1900-01-02' and '2199-12-30'
        then 'scoreDate out of range: ' || quote_literal(s.score_date) || ', outside 1900-01-02 to 2199-12-30'
      when s.score_status_value <> 'not submitted' and s.score_status_value <> 'exempt'
           and ({pct}) not between 0 and 999.99
        then 'score out of range: ' || s.score || coalesce(' of ' || s.result_value_max, '')
             || ' is ' || ({pct}) || '%%, outside 0 to 999.99'
    """,
        base=base,
    )
    # The rows that lose their quiz or assignment row first: leaving, or changing kind. A student marked
    # left keeps the scores a bulk file no longer lists (the source drops a leaver's results with them; the
    # family's figures stay until the purge erases the student); a result marked tobedeleted still goes.
    job.x(f"""
      create temp table results_gone on commit drop as
      select m.sourced_id, m.kind, m.target_id, g.leaving
        from oneroster_result m join {job.leaving("results", "oneroster_result", "v.kind <> v.old_kind")} g
             on g.sourced_id = m.sourced_id
        left join oneroster_student sm on sm.source = m.source and sm.sourced_id = m.student_sourced_id
        left join student_profile sp on sp.id = sm.student_profile_id
        left join (select distinct sourced_id from v_results where reason is null and deleting) d
             on d.sourced_id = m.sourced_id
       where m.source = %(source)s
         and not (g.leaving and sp.left_at is not null and d.sourced_id is null)
    """)
    delete_targets(job, "results_gone", "true")
    job.summary.count(
        "result mappings",
        "deleted",
        job.x("""
      delete from oneroster_result m using results_gone g
       where m.source = %(source)s and m.sourced_id = g.sourced_id and g.leaving
    """),
    )
    seq = sequences(job)
    new_id = f"case when v.kind = 'quiz' then nextval({seq['quiz']}) else nextval({seq['assignment']}) end"
    values = (
        "v.line_item_sourced_id, v.student_sourced_id, v.score_status_value, v.score_value, v.score_date_value, v.kind"
    )
    columns = "line_item_sourced_id, student_sourced_id, score_status, score, score_date, kind"
    # Known results: an UPDATE of those whose values differ (a new id only when the kind changes).
    job.summary.count(
        "result mappings",
        "updated",
        job.x(f"""
      update oneroster_result m
         set ({columns}, target_id) = ({values}, case when v.kind = v.old_kind then v.old_target_id else {new_id} end)
        from v_results v
       where m.source = %(source)s and m.sourced_id = v.sourced_id and v.reason is null and not v.deleting
         and v.old_kind is not null and ({", ".join("m." + c.strip() for c in columns.split(","))})
             is distinct from ({values})
    """),
    )
    # New results: a plain INSERT (no conflict to look for: the join above found none).
    job.summary.count(
        "result mappings",
        "inserted",
        job.x(f"""
      insert into oneroster_result (source, sourced_id, {columns}, target_id)
      select %(source)s, v.sourced_id, {values}, {new_id}
        from v_results v where v.reason is null and not v.deleting and v.old_kind is null
    """),
    )
