-- Names without control characters (issue 22, finding 2): a name reaches mail headers (the guardian's
-- display name in To:) and every page; CR/LF in one stopped the digest run. The four name columns
-- refuse C0 controls (tab, CR and LF included), DEL, C1 controls and the Unicode line and paragraph
-- separators. NUL cannot be in a text value at all.
--
-- A live database may hold such names already. They are cleaned first (each run of those characters
-- becomes one space: nothing else in the name changes, the row stays), then each constraint is added
-- NOT VALID (a brief lock, no scan) and validated (a scan that blocks no reader or writer once the
-- migration's transaction is the only one holding locks). The migration cannot fail on existing rows;
-- the cleaning is not undone by the downgrade (the old names broke mail, and a space reads the same).

update student_profile set display_name = regexp_replace(display_name, '[\x01-\x1f\x7f-\x9f\u2028\u2029]+', ' ', 'g')
 where display_name ~ '[\x01-\x1f\x7f-\x9f\u2028\u2029]';
update guardian set display_name = regexp_replace(display_name, '[\x01-\x1f\x7f-\x9f\u2028\u2029]+', ' ', 'g')
 where display_name ~ '[\x01-\x1f\x7f-\x9f\u2028\u2029]';
update course set name = regexp_replace(name, '[\x01-\x1f\x7f-\x9f\u2028\u2029]+', ' ', 'g')
 where name ~ '[\x01-\x1f\x7f-\x9f\u2028\u2029]';
update staff_member set display_name = regexp_replace(display_name, '[\x01-\x1f\x7f-\x9f\u2028\u2029]+', ' ', 'g')
 where display_name ~ '[\x01-\x1f\x7f-\x9f\u2028\u2029]';

alter table student_profile add constraint student_profile_display_name_printable
  check (display_name !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029]') not valid;
alter table student_profile validate constraint student_profile_display_name_printable;
comment on constraint student_profile_display_name_printable on student_profile is
  'No control characters (C0 with tab, CR and LF; DEL; C1; U+2028, U+2029) in a name: it reaches mail and pages.';

alter table guardian add constraint guardian_display_name_printable
  check (display_name !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029]') not valid;
alter table guardian validate constraint guardian_display_name_printable;
comment on constraint guardian_display_name_printable on guardian is
  'No control characters (C0 with tab, CR and LF; DEL; C1; U+2028, U+2029) in a name: it reaches the To: header of mail.';

alter table course add constraint course_name_printable
  check (name !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029]') not valid;
alter table course validate constraint course_name_printable;
comment on constraint course_name_printable on course is
  'No control characters (C0 with tab, CR and LF; DEL; C1; U+2028, U+2029) in a name: it reaches pages.';

alter table staff_member add constraint staff_member_display_name_printable
  check (display_name !~ '[\x01-\x1f\x7f-\x9f\u2028\u2029]') not valid;
alter table staff_member validate constraint staff_member_display_name_printable;
comment on constraint staff_member_display_name_printable on staff_member is
  'No control characters (C0 with tab, CR and LF; DEL; C1; U+2028, U+2029) in a name.';
