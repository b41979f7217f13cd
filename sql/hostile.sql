--
-- hostile: odd responses and odd values are clean errors, and the session
-- keeps working; every value is encoded where it goes
--
\set VERBOSITY default
SET timezone = 'UTC';
\set q 'SELECT count(*) FROM usage.consumption_by_folder WHERE tenant_id = ''22222222-2222-2222-2222-222222222222'' AND consumable_code = ''RU'' AND start_date = ''2024-01-01'' AND end_date = ''2024-01-02'''
\! python3 test/mockctl.py reset

-- malformed JSON
\! python3 test/mockctl.py fault body consumption-by-folder '{"items": [{"folderKey": "a",}]}'
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a body cut short by the server (valid headers, half a body, no retry helps)
\! python3 test/mockctl.py fault body consumption-by-folder '{"items": [{"folderKey": "a"'
:q;
-- not JSON at all
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "action": {"content_type": "text/html", "body_raw": "<html>maintenance</html>"}}'
:q;
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- JSON of the wrong shape
\! python3 test/mockctl.py fault body consumption-by-folder '[1, 2]'
:q;
\! python3 test/mockctl.py fault body consumption-by-folder '"items"'
:q;
\! python3 test/mockctl.py fault body consumption-by-folder '{"data": []}'
:q;
\! python3 test/mockctl.py fault items consumption-by-folder '{"folderKey": "a"}'
:q;
\! python3 test/mockctl.py fault items consumption-by-folder '[{"folderKey": "a"}, 42]'
:q;
\! python3 test/mockctl.py fault items consumption-by-folder '[[1]]'
:q;
\! python3 test/mockctl.py fault items consumption-by-folder '"none"'
:q;
-- an empty body, and "items": null (no rows)
\! python3 test/mockctl.py fault body consumption-by-folder ''
:q;
\! python3 test/mockctl.py fault items consumption-by-folder null
:q;
-- values: beyond bigint, a string where a number belongs, nested values, null
\! python3 test/mockctl.py fault body consumption-by-folder '{"items": [{"processCountSelf": 123456789012345678901234567890}]}'
SELECT process_count_self FROM usage.consumption_by_folder WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-01-02';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py fault body consumption-by-folder '{"items": [{"consumedBySelf": 123456789012345678901234567890.5, "processCountSelf": -1e3}]}'
SELECT consumed_by_self, process_count_self FROM usage.consumption_by_folder WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-01-02';
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "action": {"item_patch": {"consumedBySelf": "abc"}}}'
SELECT consumed_by_self FROM usage.consumption_by_folder WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-01-02';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
\! python3 test/mockctl.py fault items consumption-by-folder '[{"folderName": {"nested": [1, {"deep": true}]}, "folderKey": [1, 2], "parentFolderKey": null, "consumedBySelf": 1e2}]'
SELECT folder_name, folder_key, parent_folder_key IS NULL AS parent_null, consumed_by_self
  FROM usage.consumption_by_folder WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-01-02';
-- escapes, \u0000, invalid UTF-8, very deep nesting
\! python3 test/mockctl.py fault body consumption-by-folder '{"items": [{"folderName": "tab\tquote\"sn\u00e9\ud83d\ude00"}]}'
SELECT folder_name FROM usage.consumption_by_folder WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-01-02';
\! python3 test/mockctl.py fault body consumption-by-folder '{"items": [{"folderName": "a\u0000b"}]}'
SELECT folder_name FROM usage.consumption_by_folder WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-01-02';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- {"items": [{"folderName": "<0xff 0xfe>"}]}
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "action": {"body_b64": "eyJpdGVtcyI6IFt7ImZvbGRlck5hbWUiOiAi//4ifV19"}}'
SELECT folder_name FROM usage.consumption_by_folder WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-01-02';
\echo SQLSTATE :LAST_ERROR_SQLSTATE
-- a NUL byte in the body
\! python3 test/mockctl.py fault '{"match": {"path_regex": "consumption-by-folder"}, "action": {"body_b64": "eyJpdGVtcyI6IFtdfQA="}}'
:q;
\! python3 test/mockctl.py fault "$(python3 -c 'import json; d = "[" * 50000 + "]" * 50000; print(json.dumps({"match": {"path_regex": "consumption-by-folder"}, "action": {"body_raw": "{\"items\": [{\"folderName\": " + d + "}]}"}}))')"
-- (nested 50,000 deep: the parser keeps its depth in a stack of its own,
-- not in recursion, so the value is read as the text it is)
SELECT length(folder_name) FROM usage.consumption_by_folder WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = 'RU' AND start_date = '2024-01-01' AND end_date = '2024-01-02';
-- after all that the session still works
\! python3 test/mockctl.py reset
:q;

-- values are URL-encoded, JSON-escaped and percent-encoded where they go
SELECT count(*) FROM usage.cloud_flow_connection_usage
 WHERE flow_id = E'a&b=c#d"e\\f\ng é/?+%' AND tenant = 'x y';
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = '22222222-2222-2222-2222-222222222222' AND consumable_code = E'a&b=c#d"e\\f\ng é/?+%'
   AND start_date = '2024-01-01' AND end_date = '2024-01-02';
-- (a tenant_id is a GUID: anything else is refused before it is sent)
SELECT count(*) FROM usage.consumption_by_folder
 WHERE tenant_id = E'a&b=c#d"e\\f\ng é/?+%' AND consumable_code = 'RU'
   AND start_date = '2024-01-01' AND end_date = '2024-01-02';
\! python3 test/mockctl.py requests
-- the organization id is a path segment, and a GUID: nothing else gets there
CREATE SERVER odd FOREIGN DATA WRAPPER usage_fdw
  OPTIONS (provider 'uipath', base_url 'http://127.0.0.1:1', organization_id 'a/b?c#d');
\! python3 test/mockctl.py reset
RESET timezone;
