"""What the reliability suite tries, and which tests try it.

Each `Check` is one kind of bad input or one injected fault, with the tests that exercise
it: those in tests/reliability and the older ones elsewhere (tests/indexer, tests/storage,
tests/daemon, tests/miniclip, tests/web), which are counted here rather than repeated.
A test is named by its node id; `name[param]` picks one parametrized case, `name[prefix*`
the cases whose id starts so, and a bare name takes them all. test_catalogue.py checks that
every named test exists.
"""

from __future__ import annotations

from dataclasses import dataclass

BAD_INPUT, FAULT, MODEL_INPUT, WEB = "bad input", "fault", "model input", "web"
KINDS = {
    BAD_INPUT: "kinds of bad input tried (files and folders)",
    FAULT: "faults injected",
    MODEL_INPUT: "bad training and model input",
    WEB: "hostile web requests",
}

R = "tests/reliability/"
BAD_FILE = R + "test_bad_files.py::test_a_bad_file_is_recorded_and_nothing_else_changes"
DAEMON_BAD_FILES = R + "test_daemon_input.py::test_the_daemon_keeps_going_through_every_bad_file"
IMAGES = "tests/indexer/test_images.py::"
SCANNER = "tests/indexer/test_scanner.py::"
WATCHER = "tests/indexer/test_watcher.py::"
RACES = R + "test_watcher_races.py::"
CRASHES = R + "test_crashes.py::"
STORAGE = "tests/storage/"
DAEMON = "tests/daemon/"
MODEL = R + "test_model_input.py::"
SAFETY = "tests/web/test_safety.py::"
RUNTIME = "tests/miniclip/test_runtime.py::"
LIBRARY_CLI = "tests/cli/test_library_cli.py::"
IPHONE = "tests/indexer/test_iphone_formats.py::"
COVERAGE = "tests/indexer/test_watch_coverage.py::"
ROOTS = "tests/indexer/test_root_folders.py::"
STALE = "tests/cli/test_stale_results.py::"
NAMES = "tests/cli/test_undecodable_names.py::"
FAULTS = R + "test_storage_faults.py::"
IDS = R + "test_photo_ids.py::"
PRIVACY = R + "test_privacy.py::"
HOSTILE = R + "test_hostile_bytes.py::"
WEB_HARD = R + "test_web_hardening.py::"
BURSTS = R + "test_daemon_bursts.py::"


@dataclass(frozen=True)
class Check:
    kind: str
    what: str
    tests: tuple[str, ...]

    def covers(self, nodeid: str) -> bool:
        return any(nodeid == t or (nodeid.startswith(t + "[") and "[" not in t)
                   or (t.endswith("*") and nodeid.startswith(t[:-1])) for t in self.tests)


def _bad_file(what: str, *others: str) -> Check:
    return Check(BAD_INPUT, what, (f"{BAD_FILE}[{what}]", DAEMON_BAD_FILES, *others))


CHECKS = [
    _bad_file("zero-byte file", IMAGES + "test_zero_byte_file"),
    _bad_file("truncated JPEG", IMAGES + "test_truncated_jpeg"),
    _bad_file("text file named .jpg", IMAGES + "test_text_file_named_jpg"),
    _bad_file("decompression bomb", IMAGES + "test_decompression_bomb_is_refused_from_the_header"),
    _bad_file("PNG signature then garbage", IMAGES + "test_random_bytes_behind_a_real_header"),
    _bad_file("CMYK JPEG", IMAGES + "test_every_mode_becomes_rgb[cmyk.jpg-<lambda>-expected7]"),
    _bad_file("16-bit PNG", IMAGES + "test_every_mode_becomes_rgb[grey16.png-<lambda>-expected9]"),
    _bad_file("palette PNG with transparency", IMAGES + "test_palette_with_transparency_is_composited_on_white"),
    _bad_file("animated GIF", IMAGES + "test_animated_gif_gives_first_frame"),
    _bad_file("EXIF-rotated JPEG", R + "test_daemon_input.py::test_an_exif_rotated_photo_embeds_like_the_upright_one",
              IMAGES + "test_exif_orientation_6_comes_out_upright_with_swapped_dims"),
    _bad_file("JPEG with a garbage EXIF block"),
    Check(BAD_INPUT, "HEIC/HEIF and AVIF photos: read, or failed with the reason (corrupt, no decoder)",
          (IPHONE + "test_heic_is_a_photo_even_without_its_plugin", IPHONE + "test_heic_decodes_with_taken_at",
           IPHONE + "test_heic_with_exif_orientation_comes_out_upright", IPHONE + "test_avif_decodes",
           IPHONE + "test_truncated_heic_fails_with_a_reason",
           IPHONE + "test_not_heif_content_with_heic_name_fails_with_a_reason",
           IPHONE + "test_truncated_avif_fails_with_a_reason", IPHONE + "test_heic_without_plugin_fails_with_install_hint",
           IPHONE + "test_heic_content_under_a_jpg_name_without_plugin_says_heif",
           IPHONE + "test_avif_without_decoder_fails_with_upgrade_hint",
           IPHONE + "test_scan_counts_heic_without_plugin_as_failed_then_indexes_it",
           "tests/e2e/test_iphone_photos.py::test_converted_photo_is_found_first")),
    Check(BAD_INPUT, "a symlinked folder gets photos while the daemon watches",
          (COVERAGE + "test_photo_added_to_a_symlinked_folder_while_watching_is_indexed",
           COVERAGE + "test_symlinks_created_and_removed_while_watching",
           COVERAGE + "test_links_inside_a_folder_moved_in_or_renamed_while_watching_are_followed",
           COVERAGE + "test_handler_reports_symlinks_as_link_changes",
           "tests/daemon/test_watch_coverage_e2e.py::test_daemon_indexes_a_photo_added_under_a_symlinked_folder")),
    Check(BAD_INPUT, "one folder under two names, or nested in another root",
          (ROOTS + "test_one_folder_under_another_name_is_the_same_root",
           ROOTS + "test_indexing_through_a_symlink_first_stores_real_paths",
           ROOTS + "test_a_folder_inside_a_root_is_covered_by_it",
           ROOTS + "test_a_wider_root_absorbs_the_roots_inside_it_without_re_embedding",
           ROOTS + "test_a_library_that_indexed_one_folder_twice_is_mended_by_the_next_scan",
           "tests/storage/test_roots.py::test_the_same_folder_by_inode_is_the_same_root",
           STALE + "test_a_root_indexed_again_through_a_symlink_is_one_root")),
    Check(BAD_INPUT, "a folder bind-mounted inside another root, or inside its own",
          ("tests/indexer/test_bind_mounts.py::test_a_folder_of_one_root_bound_inside_another_is_indexed_once",
           "tests/indexer/test_bind_mounts.py::test_indexing_the_root_with_the_bind_mount_first_stores_it_once_too",
           "tests/indexer/test_bind_mounts.py::test_a_folder_bound_inside_its_own_root_is_indexed_once",
           "tests/indexer/test_bind_mounts.py::test_a_photo_added_under_a_bound_folder_while_watching_is_indexed_once")),
    Check(BAD_INPUT, "thousands of byte-identical copies",
          ("tests/indexer/test_copies.py::test_copies_share_one_lookup_and_reuse_the_vector",
           "tests/indexer/test_copies.py::test_a_copy_and_a_move_of_one_content_in_one_scan")),
    Check(BAD_INPUT, "a photo deleted with no daemon running, then searched",
          (STALE + "test_query_leaves_out_a_deleted_photo_and_still_fills_k",
           STALE + "test_paths_only_lists_only_files_that_exist", STALE + "test_similar_leaves_out_a_deleted_photo",
           STALE + "test_the_web_backend_leaves_out_a_deleted_photo",
           STALE + "test_the_daemons_searcher_skips_a_file_gone_before_the_watcher_noticed")),
    Check(BAD_INPUT, "names that are not UTF-8, printed under a strict UTF-8 locale",
          (NAMES + "test_index_query_similar_status_print_the_original_bytes",
           NAMES + "test_errors_quote_names_by_their_bytes",
           NAMES + "test_json_output_is_valid_unicode_with_the_exact_bytes_beside",
           "tests/daemon/test_undecodable_names.py::test_daemon_socket_query_similar_and_log_with_an_undecodable_folder",
           "tests/web/test_undecodable_names.py::test_api_names_are_valid_unicode_with_exact_bytes_and_files_are_served")),
    Check(BAD_INPUT, "names with newlines or spaces piped to xargs",
          (NAMES + "test_null_output_round_trips_through_xargs_0",)),
    Check(BAD_INPUT, "non-UTF-8 and 255-byte names",
          (R + "test_bad_files.py::test_names_that_are_not_utf8_or_255_bytes_long",)),
    Check(BAD_INPUT, "file and folder without read permission",
          (R + "test_permissions.py::test_a_file_and_a_folder_without_read_permission",
           SCANNER + "test_unreadable_file_is_recorded_even_as_root")),
    Check(BAD_INPUT, "the library folder inside a watched root",
          (R + "test_bad_files.py::test_a_library_folder_inside_a_watched_root_is_not_indexed",)),
    Check(BAD_INPUT, "tens of thousands of failed files (a long status reply)",
          (R + "test_daemon_input.py::test_a_status_listing_thousands_of_failed_photos_still_arrives",)),
    Check(BAD_INPUT, "symlink loop, symlinked folder inside the root",
          (SCANNER + "test_symlink_loop_is_walked_once", DAEMON_BAD_FILES,
           RACES + "test_symlinked_folders_never_give_a_photo_two_paths")),
    Check(BAD_INPUT, "file deleted between event and processing",
          (RACES + "test_a_file_deleted_while_it_is_processed_is_gone_not_failed",
           WATCHER + "test_events_for_files_already_gone_are_harmless")),
    Check(BAD_INPUT, "photo still being written",
          (RACES + "test_a_photo_written_slowly_is_embedded_once_complete",
           WATCHER + "test_file_being_written_is_embedded_once_complete")),
    Check(BAD_INPUT, "1,000 files dropped at once", (RACES + "test_a_thousand_files_dropped_at_once",)),
    Check(BAD_INPUT, "burst of creates and deletes of one name",
          (RACES + "test_a_burst_of_creates_and_deletes_of_one_name",)),
    Check(FAULT, "SIGKILL during a scan",
          (SCANNER + "test_sigkill_mid_scan_loses_at_most_one_batch",
           SCANNER + "test_crash_mid_scan_resumes_without_duplicates",
           DAEMON + "test_watch_e2e.py::test_sigterm_then_sigkill_mid_scan_then_restart_leaves_no_duplicates_or_gaps")),
    Check(FAULT, "SIGKILL during a FAISS save",
          (CRASHES + "test_sigkill_during_faiss_saves_never_loses_or_doubles_a_vector",)),
    Check(FAULT, "FAISS file deleted, corrupted or stale",
          (CRASHES + "test_a_damaged_faiss_file_is_rebuilt",
           STORAGE + "test_index_file.py::test_missing_index_is_rebuilt_and_saved",
           STORAGE + "test_index_file.py::test_corrupt_index_is_rebuilt",
           STORAGE + "test_index_file.py::test_truncated_index_is_rebuilt",
           STORAGE + "test_index_file.py::test_stale_index_is_rebuilt",
           STORAGE + "test_index_file.py::test_index_out_of_sync_with_database_is_rebuilt")),
    Check(FAULT, "SQLite read by another process while indexing",
          (STORAGE + "test_concurrency.py::test_reader_process_sees_consistent_snapshots_while_writing",
           STORAGE + "test_concurrency.py::test_writer_thread_and_query_thread_share_a_library")),
    Check(FAULT, "watched root removed or unmounted",
          (CRASHES + "test_a_root_that_vanishes_during_a_scan_is_kept_as_missing",
           SCANNER + "test_missing_root_is_kept_and_restored_without_re_embedding",
           SCANNER + "test_empty_mount_point_counts_as_missing",
           WATCHER + "test_unplugged_root_is_marked_missing_not_removed",
           DAEMON + "test_watch_e2e.py::test_daemon_follows_every_change")),
    Check(FAULT, "disk full while saving",
          (CRASHES + "test_disk_full_while_the_watcher_saves",
           CRASHES + "test_disk_full_during_a_scan_keeps_the_scan_and_reports_the_save",
           STORAGE + "test_index_file.py::test_save_under_enospc_keeps_previous_index")),
    Check(FAULT, "a batch that cannot be written (database locked by another process)",
          (CRASHES + "test_a_batch_that_cannot_be_written_is_retried_not_dropped",)),
    Check(FAULT, "more folders than the inotify watch limit",
          (COVERAGE + "test_folders_past_the_watch_limit_are_reported_once_and_polled",
           "tests/daemon/test_watch_coverage_e2e.py::test_daemon_reports_and_polls_folders_past_the_watch_limit")),
    Check(FAULT, "events lost (inotify queue overflow, a watch gone)",
          (COVERAGE + "test_queue_overflow_rescans_what_the_lost_events_could_have_touched",
           COVERAGE + "test_a_watch_that_disappears_on_a_folder_still_there_rescans_it")),
    Check(FAULT, "reindex interrupted part-way",
          (LIBRARY_CLI + "test_an_interrupted_reindex_says_how_to_finish_and_the_next_one_resumes",)),
    Check(FAULT, "a second daemon on the same library",
          (DAEMON + "test_lock_and_socket.py::test_lock_is_exclusive_and_names_its_holder",
           DAEMON + "test_lock_and_socket.py::test_lock_of_a_killed_process_is_free",
           DAEMON + "test_watch_e2e.py::test_one_daemon_per_library_same_answers_and_clean_sigterm",
           "tests/cli/test_library_cli.py::test_writers_refuse_while_another_holds_the_library")),
    Check(FAULT, "another process holds the SQLite write lock past the busy timeout",
          (FAULTS + "test_index_waits_out_another_process_holding_the_write_lock",
           FAULTS + "test_the_daemon_waits_out_a_write_lock_held_during_its_scan",
           FAULTS + "test_the_watchers_first_scan_is_retried_not_swallowed")),
    Check(FAULT, "disk already full when index or the daemon starts",
          (FAULTS + "test_index_on_a_full_disk_says_disk_full_and_counts_the_photos_not_stored[already full]",
           FAULTS + "test_the_daemon_on_a_full_disk_stays_up_and_resumes_when_space_returns",
           CRASHES + "test_a_full_disk_when_the_index_file_must_be_rebuilt_does_not_stop_the_open")),
    Check(FAULT, "disk full while writing photos",
          (FAULTS + "test_index_on_a_full_disk_says_disk_full_and_counts_the_photos_not_stored[fills up during the scan]",
           CRASHES + "test_a_full_disk_while_writing_rows_is_one_clear_error")),
    Check(FAULT, "a bad photo beside a library that cannot be written (only the photo fails)",
          (FAULTS + "test_a_photo_is_failed_only_for_its_own_fault",)),
    Check(FAULT, "the newest photo deleted, then a new one added (old /photo/ID links)",
          (IDS + "test_the_id_of_a_deleted_newest_photo_is_never_given_again",)),
    Check(FAULT, "a library from the previous schema (v2) upgraded in place",
          (IDS + "test_upgrading_a_v2_library_keeps_ids_vectors_and_references",
           IDS + "test_an_upgraded_library_enforces_foreign_keys_again",
           STORAGE + "test_migrations.py::test_v1_database_is_upgraded_and_keeps_its_data")),
    Check(MODEL_INPUT, "captions.json: not JSON, wrong shape, empty, missing images, blank",
          (MODEL + "test_broken_captions_are_one_clear_error_for_evaluate",
           "tests/miniclip/test_train_cli.py::test_bad_captions_file_gives_one_line_error")),
    Check(MODEL_INPUT, "checkpoint corrupt or truncated",
          (*(f"{MODEL}test_a_broken_checkpoint_is_one_clear_error[{kind}-*"
             for kind in ("empty file", "truncated checkpoint", "random bytes", "another program's safetensors")),
           "tests/miniclip/test_checkpoint.py::test_corrupt_file_is_refused",
           "tests/miniclip/test_checkpoint.py::test_cli_reports_a_bad_checkpoint_in_one_line")),
    Check(MODEL_INPUT, "checkpoint of another architecture",
          (MODEL + "test_a_broken_checkpoint_is_one_clear_error[another architecture-*",
           "tests/miniclip/test_checkpoint.py::test_other_architecture_is_refused")),
    Check(MODEL_INPUT, "checkpoint carrying a pickled object (not executed)",
          (MODEL + "test_a_broken_checkpoint_is_one_clear_error[pickled object-*",
           "tests/miniclip/test_checkpoint.py::test_pickled_object_is_refused_without_running_it")),
    Check(MODEL_INPUT, "ONNX export missing, stale, corrupt, hand-edited or edited in place",
          (RUNTIME + "test_missing_export", RUNTIME + "test_stale_export_after_the_checkpoint_changed",
           RUNTIME + "test_corrupt_onnx_file", RUNTIME + "test_corrupt_or_forged_manifest",
           RUNTIME + "test_a_hand_edited_manifest_is_corrupt_not_a_traceback",
           RUNTIME + "test_a_file_edited_in_place_with_its_mtime_put_back_is_caught",
           LIBRARY_CLI + "test_a_checkpoint_without_a_usable_export_is_one_line_naming_the_command",
           LIBRARY_CLI + "test_a_running_daemon_does_not_hide_an_unusable_checkpoint")),
    Check(WEB, "path traversal (.., absolute, URL-encoded)",
          (SAFETY + "test_paths_from_the_request_are_refused",
           SAFETY + "test_absolute_paths_of_library_photos_are_refused")),
    Check(WEB, "symlink out of the library", (SAFETY + "test_a_symlink_out_of_the_library_is_not_served",)),
    Check(WEB, "binds 127.0.0.1 unless told otherwise", (SAFETY + "test_serve_binds_loopback_by_default",)),
    Check(WEB, "query strings of any length or content",
          (SAFETY + "test_bad_query_strings_are_400", SAFETY + "test_odd_but_valid_queries_are_answered",
           SAFETY + "test_bad_similar_requests_are_refused", SAFETY + "test_raw_garbage_requests_never_crash_it")),
    Check(WEB, "foreign Host header", (SAFETY + "test_foreign_host_headers_are_refused",)),
    # Issue 15, sections 1, 3 and 4: private to its owner, bursts and slow clients, hostile bytes.
    Check(BAD_INPUT, "a library made under any umask, or found open to other accounts",
          (PRIVACY + "test_a_new_library_is_private_whatever_the_umask",
           PRIVACY + "test_a_library_left_open_is_tightened_and_said_once")),
    Check(BAD_INPUT, "a library folder, socket, lock or database another account owns",
          (PRIVACY + "test_a_library_another_account_owns_is_refused",)),
    Check(BAD_INPUT, "a FAISS file whose sizes do not fit it (sidecar forged to match; flat and IVF)",
          (HOSTILE + "test_the_layout_check_accepts_what_faiss_writes",
           HOSTILE + "test_the_layout_check_accepts_the_ivf_files_storage_writes",
           HOSTILE + "test_a_faiss_file_whose_sizes_do_not_fit_is_refused_before_faiss_reads_it",
           HOSTILE + "test_an_ivf_file_whose_sizes_do_not_fit_is_refused_before_faiss_reads_it",
           HOSTILE + "test_a_library_with_a_forged_faiss_file_rebuilds_it_without_allocating_it")),
    Check(BAD_INPUT, "query text that is not UTF-8 (argv, daemon socket, web API)",
          (HOSTILE + "test_query_text_that_is_not_utf8_is_refused_the_same_way_everywhere",)),
    Check(MODEL_INPUT, "checkpoint config or vocabulary asking for enormous sizes",
          (HOSTILE + "test_a_checkpoint_config_with_enormous_sizes_is_one_clear_error",
           HOSTILE + "test_a_checkpoint_vocabulary_with_enormous_sizes_is_one_clear_error")),
    Check(MODEL_INPUT, "safetensors header or export manifest larger than any real one",
          (HOSTILE + "test_a_safetensors_header_longer_than_the_file_is_one_clear_error",
           HOSTILE + "test_an_export_manifest_of_megabytes_is_refused_unread")),
    Check(WEB, "another local account, guessed tokens and cookies",
          (PRIVACY + "test_another_account_reads_neither_the_library_nor_the_page",
           WEB_HARD + "test_every_route_needs_the_runs_token",
           WEB_HARD + "test_the_printed_link_sets_a_strict_httponly_cookie_and_drops_the_token",
           WEB_HARD + "test_serve_open_never_puts_the_token_on_a_command_line")),
    Check(WEB, "DNS rebinding on every bind (0.0.0.0, ::, 0, ::ffff:127.0.0.1)",
          (WEB_HARD + "test_a_host_allow_list_holds_on_every_bind", WEB_HARD + "test_serve_help_says_how_to_allow_a_name")),
    Check(WEB, "a burst of concurrent requests; 60 searches on a cold server",
          (WEB_HARD + "test_a_burst_of_concurrent_requests_is_all_answered",
           WEB_HARD + "test_one_model_however_many_searches_arrive_at_once")),
    Check(WEB, "idle connections, a 300 MB photo, a photo that failed",
          (WEB_HARD + "test_an_idle_connection_is_dropped", WEB_HARD + "test_a_photo_is_streamed_not_read_whole",
           WEB_HARD + "test_only_indexed_photos_are_served")),
    Check(FAULT, "a burst of clients on the daemon socket (its queue full)",
          (BURSTS + "test_fifty_concurrent_clients_are_all_answered",
           BURSTS + "test_a_client_waits_for_a_daemon_whose_queue_is_full",
           BURSTS + "test_parallel_query_commands_are_all_answered_by_the_daemon")),
    Check(FAULT, "a daemon socket nobody serves, or not listening yet",
          (BURSTS + "test_a_socket_nobody_serves_is_given_up_at_once",
           BURSTS + "test_a_client_waits_for_a_starting_daemon")),
]
