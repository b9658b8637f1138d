"""The portal's one route table: every URL of every area, in one place.

Areas export handlers, never route lists. Order matters where paths overlap (``/sent/login``
before ``/sent/{message_id}``): the first match wins.
"""

from __future__ import annotations

from pathlib import Path

from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from portal import brand_assets, ops
from portal.account import ceremonies
from portal.account import pages as account_pages
from portal.addin import auth as addin_auth
from portal.addin import check as addin_check
from portal.addin import manifests as addin_manifests
from portal.addin import pages as addin_pages
from portal.addin import passphrase as addin_passphrase
from portal.addin import setting as addin_setting
from portal.admin import api_keys as admin_api_keys
from portal.admin import archive as admin_archive
from portal.admin import audit as admin_audit
from portal.admin import auth as admin_auth
from portal.admin import billing as admin_billing
from portal.admin import (
    brand_template,
    decisions,
    domains,
    fast_doors,
    keys,
    overview,
    quarantine,
    retention,
)
from portal.admin import branding as admin_branding
from portal.admin import pdf_setting as admin_pdf_setting
from portal.admin import policy as admin_policy
from portal.admin import protection as admin_protection
from portal.admin import settings as admin_settings
from portal.admin import setup as admin_setup
from portal.admin import users as admin_users
from portal.api import api_keys as api_api_keys  # issue 14: the API, complete
from portal.api import archive as api_archive
from portal.api import audit as api_audit  # issue 14
from portal.api import (
    billing_webhook,
    holds,
    message_control,
    messages,
    openapi,
    policy,
    policy_dry_run,
)
from portal.api import brands as api_brands  # issue 14
from portal.api import keys as api_keys
from portal.api import partner_tenants as partner_api
from portal.api import quarantine as api_quarantine
from portal.api import sent as api_sent  # issue 14
from portal.api import users as api_users  # issue 14
from portal.partner import auth as partner_auth
from portal.partner import brand as partner_brand
from portal.partner import console as partner_console
from portal.partner import people as partner_people
from portal.partner import setup as partner_setup
from portal.partner import tenants as partner_tenants
from portal.reader import (
    attachments,
    downloads,
    entry,
    entry_fast,
    forward,
    gone,
    inbox,
    landing,
    message,
    pdf,
    reply,
    thread,
    unlock,
    verify,
)
from portal.sent import actions as sent_actions
from portal.sent import auth as sent_auth
from portal.sent import compose as sent_compose
from portal.sent import pages as sent_pages
from portal.sent import receipt as sent_receipt
from portal.support import api as support_api
from portal.support import desk, pin

GET, POST, PUT, DELETE = ["GET"], ["POST"], ["PUT"], ["DELETE"]
PATCH = ["PATCH"]
STATIC_DIR = Path(__file__).parent / "static"  # the pages' stylesheets and icons


def routes() -> list[BaseRoute]:
    """The table (built when the app is made, not at import time)."""
    return [
        # --- reader: the recipient of a sealed message -----------------------------------
        Route("/m/{token}", entry.show, methods=GET),
        Route("/m/{token}/code", entry.send_code, methods=POST),
        Route("/", landing.landing, methods=GET),
        Route("/m/{token}/verify", entry.verify, methods=POST),
        Route("/m/{token}/ask", gone.ask_by_token, methods=POST),
        Route("/m/{token}/passkey/options", entry_fast.passkey_options, methods=POST),
        Route("/m/{token}/passkey", entry_fast.passkey_verify, methods=POST),
        Route("/m/{token}/device", entry_fast.continue_device, methods=POST),
        Route("/inbox", inbox.inbox, methods=GET),
        Route("/messages/{message_id}", thread.conversation, methods=GET),
        Route("/messages/{message_id}/ask", gone.ask_signed_in, methods=POST),
        Route("/messages/{message_id}/unlock", unlock.unlock, methods=POST),
        Route("/messages/{message_id}/pdf", pdf.send_pdf, methods=POST),
        Route("/pdf-password", pdf.password_page, methods=GET),
        Route("/pdf-password", pdf.password_save, methods=POST),
        Route("/messages/{message_id}/body", message.body, methods=GET),
        Route("/messages/{message_id}/download.eml", downloads.message_eml, methods=GET),
        Route("/messages/{message_id}/download.pdf", downloads.message_pdf, methods=GET),
        Route("/messages/{message_id}/thread.eml", downloads.thread_eml, methods=GET),
        Route("/messages/{message_id}/thread.pdf", downloads.thread_pdf, methods=GET),
        Route("/messages/{message_id}/attachments/{n:int}", attachments.attachment, methods=GET),
        Route("/messages/{message_id}/reply", reply.reply_form, methods=GET),
        Route("/messages/{message_id}/reply", reply.reply_send, methods=POST),
        Route("/messages/{message_id}/forward", forward.forward_form, methods=GET),
        Route("/messages/{message_id}/forward", forward.forward_send, methods=POST),
        Route("/logout", entry.logout, methods=POST),
        Route("/verify", verify.verify_form, methods=GET),
        Route("/verify", verify.verify_check, methods=POST),
        # --- account: anyone signed in; their passkeys and remembered devices ------------
        Route("/account", account_pages.account_page, methods=GET),
        Route("/account/passkeys/options", ceremonies.register_options, methods=POST),
        Route("/account/passkeys", ceremonies.register, methods=POST),
        Route("/account/passkeys/{passkey_id}/remove", account_pages.remove_passkey, methods=POST),
        Route("/account/passkey/confirm/options", ceremonies.confirm_options, methods=POST),
        Route("/account/passkey/confirm", ceremonies.confirm, methods=POST),
        Route("/account/devices/{device_id}/forget", account_pages.forget_device, methods=POST),
        Route("/account/devices/forget", account_pages.forget_all, methods=POST),
        Route("/account/sign-out-everywhere", account_pages.sign_out_everywhere, methods=POST),
        # --- admin: the tenant's admins and compliance officers --------------------------
        Route("/admin", overview.overview, methods=GET),
        Route("/admin/login", admin_auth.login_form, methods=GET),
        Route("/admin/login", admin_auth.send_code, methods=POST),
        Route("/admin/verify", admin_auth.verify, methods=POST),
        Route("/admin/passkey/options", fast_doors.passkey_options, methods=POST),
        Route("/admin/passkey", fast_doors.passkey_verify, methods=POST),
        Route("/admin/device", fast_doors.continue_device, methods=POST),
        Route("/admin/users/passkeys/remove", admin_users.remove_passkeys, methods=POST),
        Route("/admin/logout", admin_auth.logout, methods=POST),
        Route("/admin/quarantine", quarantine.quarantine_list, methods=GET),
        Route("/admin/quarantine/{held_id}", quarantine.held_detail, methods=GET),
        Route("/admin/quarantine/{held_id}/release", quarantine.release, methods=POST),
        Route("/admin/quarantine/{held_id}/reject", quarantine.reject, methods=POST),
        Route("/admin/messages/{message_id}", decisions.message_decisions, methods=GET),
        Route("/admin/messages/{message_id}/revoke", decisions.revoke, methods=POST),
        Route("/admin/keys", keys.keys_page, methods=GET),
        Route("/admin/keys", keys.import_keys, methods=POST),
        Route("/admin/keys/{key_id}/remove", keys.confirm_remove, methods=GET),
        Route("/admin/keys/{key_id}/remove", keys.remove, methods=POST),
        Route("/admin/archive", admin_archive.archive_page, methods=GET),
        Route("/admin/archive/export", admin_archive.archive_export, methods=GET),
        Route("/admin/retention", retention.retention_page, methods=GET),
        Route("/admin/retention", retention.save_retention, methods=POST),
        Route("/admin/holds", retention.place_hold, methods=POST),
        Route("/admin/holds/{hold_id}/release", retention.release_hold, methods=POST),
        Route("/admin/billing", admin_billing.standing_page, methods=GET),
        Route("/admin/branding", admin_branding.branding_page, methods=GET),
        Route("/admin/branding", admin_branding.create, methods=POST),
        Route("/admin/branding/{brand_id}", admin_branding.save, methods=POST),
        Route("/admin/branding/{brand_id}/delete", admin_branding.delete, methods=POST),
        Route("/admin/branding/{brand_id}/template", brand_template.template_page, methods=GET),
        Route("/admin/branding/{brand_id}/template", brand_template.save_template, methods=POST),
        Route("/admin/users", admin_users.users_page, methods=GET),
        Route("/admin/users", admin_users.invite, methods=POST),
        Route("/admin/users/{user_id}/role", admin_users.set_role, methods=POST),
        Route("/admin/users/{user_id}/remove", admin_users.confirm_remove, methods=GET),
        Route("/admin/users/{user_id}/remove", admin_users.remove, methods=POST),
        Route("/admin/api-keys", admin_api_keys.keys_page, methods=GET),
        Route("/admin/api-keys", admin_api_keys.create, methods=POST),
        Route("/admin/api-keys/{api_key_id}/revoke", admin_api_keys.confirm_revoke, methods=GET),
        Route("/admin/api-keys/{api_key_id}/revoke", admin_api_keys.revoke, methods=POST),
        Route("/admin/settings", admin_settings.settings_page, methods=GET),
        Route("/admin/settings", admin_settings.save, methods=POST),
        Route("/admin/settings/networks", admin_settings.add, methods=POST),
        Route("/admin/settings/protection", admin_protection.save, methods=POST),
        Route("/admin/settings/pdf", admin_pdf_setting.save, methods=POST),
        Route(
            "/admin/settings/networks/{network_id:int}/remove",
            admin_settings.remove,
            methods=POST,
        ),
        Route("/admin/audit", admin_audit.audit_page, methods=GET),
        Route("/admin/audit.csv", admin_audit.audit_csv, methods=GET),
        Route("/admin/policy", admin_policy.policy_page, methods=GET),
        Route("/admin/policy", admin_policy.save_policy, methods=POST),
        Route("/admin/policy/dry-run", admin_policy.dry_run, methods=POST),
        Route("/admin/policy/history", admin_policy.history, methods=GET),
        Route("/admin/policy/versions/{version}", admin_policy.version_page, methods=GET),
        Route("/admin/policy/versions/{version}/rollback", admin_policy.rollback, methods=POST),
        Route("/admin/domains", domains.domains_page, methods=GET),
        Route("/admin/domains/keys", domains.change_keys, methods=POST),
        Route("/admin/domains/sender", domains.save_sender, methods=POST),
        # --- partner: an MSP's people, its tenants, trials and plans ------------------------
        Route("/partner", partner_tenants.home, methods=GET),
        Route("/partner/login", partner_auth.login_form, methods=GET),
        Route("/partner/login", partner_auth.send_code, methods=POST),
        Route("/partner/verify", partner_auth.verify, methods=POST),
        Route("/partner/logout", partner_auth.logout, methods=POST),
        Route("/partner/return", partner_console.back_to_partner, methods=POST),
        Route("/partner/tenants/new", partner_tenants.new_form, methods=GET),
        Route("/partner/tenants", partner_tenants.create, methods=POST),
        Route("/partner/tenants/{tenant_id}", partner_tenants.tenant_page, methods=GET),
        Route("/partner/tenants/{tenant_id}/plan", partner_tenants.set_plan, methods=POST),
        Route("/partner/tenants/{tenant_id}/standing", partner_tenants.set_standing, methods=POST),
        Route("/partner/tenants/{tenant_id}/console", partner_console.open_console, methods=POST),
        Route("/partner/tenants/{tenant_id}/setup", partner_setup.setup_page, methods=GET),
        Route("/partner/tenants/{tenant_id}/setup/check", partner_setup.start_check, methods=POST),
        Route("/partner/tenants/{tenant_id}/setup/check", partner_setup.check_state, methods=GET),
        Route("/partner/tenants/{tenant_id}/setup/tokens", partner_setup.new_token, methods=POST),
        Route(
            "/partner/tenants/{tenant_id}/setup/tokens/{token_id}/revoke",
            partner_setup.revoke,
            methods=POST,
        ),
        Route("/partner/brand", partner_brand.brand_page, methods=GET),
        Route("/partner/brand", partner_brand.save_brand, methods=POST),
        Route("/partner/people", partner_people.people_page, methods=GET),
        Route("/partner/people", partner_people.add_person, methods=POST),
        Route("/partner/people/{user_id}/remove", partner_people.remove_person, methods=POST),
        Route("/partner/api-keys", partner_people.keys_page, methods=GET),
        Route("/partner/api-keys", partner_people.create_key, methods=POST),
        Route("/partner/api-keys/{api_key_id}/revoke", partner_people.revoke_key, methods=POST),
        # --- admin: setup page and live check (issue 14, item 5) ----------------------------
        Route("/admin/setup", admin_setup.setup_page, methods=GET),
        Route("/admin/setup/check", admin_setup.start_check, methods=POST),
        Route("/admin/setup/check", admin_setup.check_state, methods=GET),
        Route("/admin/setup/tokens", admin_setup.new_token, methods=POST),
        Route("/admin/setup/tokens/{token_id}/revoke", admin_setup.revoke, methods=POST),
        # --- sent: a tenant user's own sent messages --------------------------------------
        Route("/sent", sent_pages.sent_list, methods=GET),
        Route("/sent/login", sent_auth.login_form, methods=GET),
        Route("/sent/login", sent_auth.send_code, methods=POST),
        Route("/sent/verify", sent_auth.verify, methods=POST),
        Route("/sent/passkey/options", fast_doors.sent_passkey_options, methods=POST),
        Route("/sent/passkey", fast_doors.sent_passkey_verify, methods=POST),
        Route("/sent/device", fast_doors.sent_continue_device, methods=POST),
        Route("/sent/logout", sent_auth.logout, methods=POST),
        Route("/sent/{message_id}", sent_pages.sent_message, methods=GET),
        Route("/compose", sent_compose.compose_form, methods=GET),
        Route("/compose", sent_compose.compose_send, methods=POST),
        Route("/sent/{message_id}/receipt.json", sent_receipt.sent_receipt, methods=GET),
        Route("/sent/{message_id}/receipt.pdf", sent_receipt.sent_receipt, methods=GET),
        Route("/sent/{message_id}/revoke", sent_actions.confirm_revoke, methods=GET),
        Route("/sent/{message_id}/revoke", sent_actions.revoke, methods=POST),
        Route("/sent/{message_id}/expiry", sent_actions.expiry, methods=POST),
        Route("/sent/{message_id}/resend", sent_actions.resend_notification, methods=POST),
        # --- api: programs with a tenant's bearer API key; the billing system -----------
        Route("/api/v1/messages/{message_id}", messages.message_status, methods=GET),
        Route("/api/v1/messages/{message_id}/receipt", message_control.receipt, methods=GET),
        Route("/api/v1/messages/{message_id}/revoke", message_control.revoke, methods=POST),
        Route("/api/v1/messages/{message_id}/expiry", message_control.expiry, methods=POST),
        Route(
            "/api/v1/messages/{message_id}/resend",
            message_control.resend_notification,
            methods=POST,
        ),
        Route("/api/v1/openapi.json", openapi.openapi, methods=GET),
        Route("/api/v1/keys", api_keys.list_keys, methods=GET),
        Route("/api/v1/keys", api_keys.import_keys, methods=POST),
        Route("/api/v1/keys/{fingerprint}", api_keys.remove_key, methods=DELETE),
        Route("/api/v1/policy", policy.get_policy, methods=GET),
        Route("/api/v1/policy", policy.put_policy, methods=PUT),
        Route("/api/v1/policy/dry-run", policy_dry_run.dry_run, methods=POST),
        Route("/api/v1/quarantine", api_quarantine.list_held, methods=GET),
        Route("/api/v1/quarantine/{held_id}/release", api_quarantine.release, methods=POST),
        Route("/api/v1/quarantine/{held_id}/reject", api_quarantine.reject, methods=POST),
        Route("/api/v1/archive/search", api_archive.api_search, methods=GET),
        Route("/api/v1/archive/export", api_archive.api_export, methods=GET),
        Route("/api/v1/archive/holds", holds.api_list, methods=GET),
        Route("/api/v1/archive/holds", holds.api_place, methods=POST),
        Route("/api/v1/archive/holds/{hold_id}/release", holds.api_release, methods=POST),
        Route("/api/v1/tenants", partner_api.list_tenants, methods=GET),
        Route("/api/v1/tenants", partner_api.create, methods=POST),
        Route("/api/v1/tenants/{tenant_id}", partner_api.show, methods=GET),
        Route("/api/v1/tenants/{tenant_id}/plan", partner_api.set_plan, methods=POST),
        Route("/api/v1/tenants/{tenant_id}/suspend", partner_api.suspend, methods=POST),
        Route("/api/v1/tenants/{tenant_id}/resume", partner_api.resume, methods=POST),
        Route("/api/v1/tenants/{tenant_id}/terminate", partner_api.terminate, methods=POST),
        Route("/billing/webhook", billing_webhook.webhook, methods=POST),
        # --- api (issue 14): messages list and compose, users, brands, audit, API keys ---
        Route("/api/v1/messages", api_sent.list_messages, methods=GET),
        Route("/api/v1/messages", api_sent.compose, methods=POST),
        Route("/api/v1/users", api_users.list_all, methods=GET),
        Route("/api/v1/users", api_users.add, methods=POST),
        Route("/api/v1/users/{user_id}", api_users.change, methods=PATCH),
        Route("/api/v1/users/{user_id}", api_users.remove, methods=DELETE),
        Route("/api/v1/brands", api_brands.list_all, methods=GET),
        Route("/api/v1/brands/{brand_id}", api_brands.show, methods=GET),
        Route("/api/v1/brands/{brand_id}", api_brands.change, methods=PATCH),
        Route("/api/v1/audit", api_audit.list_events, methods=GET),
        Route("/api/v1/api-keys", api_api_keys.list_all, methods=GET),
        Route("/api/v1/api-keys", api_api_keys.create, methods=POST),
        Route("/api/v1/api-keys/{api_key_id}", api_api_keys.revoke, methods=DELETE),
        # --- support: /pin for account contacts, /support for the desk -------------------
        Route("/api/v1/support/verify", support_api.api_verify, methods=POST),
        Route("/pin", pin.pin_page, methods=GET),
        Route("/pin/code", pin.pin_send_code, methods=POST),
        Route("/pin/verify", pin.pin_verify, methods=POST),
        Route("/pin/reset", pin.pin_reset, methods=POST),
        Route("/pin/logout", pin.pin_logout, methods=POST),
        Route("/support", desk.desk_home, methods=GET),
        Route("/support/login", desk.desk_login_form, methods=GET),
        Route("/support/login", desk.desk_login, methods=POST),
        Route("/support/logout", desk.desk_logout, methods=POST),
        Route("/support/lookup", desk.desk_lookup, methods=POST),
        Route("/support/verify", desk.desk_verify, methods=POST),
        Route("/support/letter", desk.desk_letter, methods=POST),
        # --- addin: the Outlook add-in (manifests, pages, sign-in, send-time check) ---------
        Route("/addin/manifest.xml", addin_manifests.xml_manifest, methods=GET),
        Route("/addin/manifest.json", addin_manifests.json_manifest, methods=GET),
        Route("/addin/color.png", addin_pages.package_icon, methods=GET),
        Route("/addin/outline.png", addin_pages.package_icon, methods=GET),
        Route("/addin/taskpane.html", addin_pages.taskpane, methods=GET),
        Route("/addin/commands.html", addin_pages.commands_page, methods=GET),
        Route("/addin/commands.js", addin_pages.commands_js, methods=GET),
        Route("/addin/help", addin_pages.help_page, methods=GET),
        Route("/addin/static/{name}", addin_pages.static_file, methods=GET),
        Route("/addin/api/code", addin_auth.send_code, methods=POST),
        Route("/addin/api/token", addin_auth.issue_token, methods=POST),
        Route("/addin/api/check", addin_check.check, methods=POST),
        Route("/addin/api/passphrase", addin_passphrase.register, methods=POST),
        Route("/admin/settings/addin", addin_setting.save, methods=POST),
        # --- ops: probes, metrics, the tenants' brand stylesheets, static files ----------
        Route("/brand/{tenant_id}.css", brand_assets.brand_css, methods=GET),
        Route("/brand/{tenant_id}/logo/{brand_id}.png", brand_assets.brand_logo, methods=GET),
        Route("/.well-known/sealmail/host-allowed", ops.host_allowed, methods=GET),
        Route("/.well-known/sealmail/receipt-keys", ops.receipt_keys, methods=GET),
        Route("/healthz", ops.healthz, methods=GET),
        Route("/readyz", ops.readyz, methods=GET),
        Route("/metrics", ops.metrics_page, methods=GET),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
