"""The Outlook add-in's two manifests for one tenant: the XML "add-in only" manifest
(``/addin/manifest.xml``, for classic Outlook and central deployment by file or URL) and the
unified Microsoft 365 app manifest (``/addin/manifest.json``). Both point at the tenant's own
portal base (:func:`core.portal_links.portal_url_for`) under HTTPS, which Outlook requires;
both carry the same GUID, derived from the tenant id so a re-upload replaces the add-in
rather than adding a second one.

What they declare, and why (INTEGRATION.md §3): a compose-window button "Send Secure" that
runs ``markSecure`` (internet headers: Mailbox 1.8), a second button opening the task pane
with the per-message options, and the Smart Alerts ``OnMessageSend`` handler (Mailbox 1.12)
in ``SoftBlock`` mode: when the add-in cannot load, mail still goes (the gateway's policy
still applies); when it answers "no", the sender must act first (see ``commands.js``).
"""

from __future__ import annotations

import json
import uuid
from typing import Any
from urllib.parse import urlsplit
from xml.sax.saxutils import quoteattr

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from core.models import Tenant
from core.portal_links import portal_url_for
from portal.addin.tenancy import manifest_tenant
from portal.state import portal

# Bump on every change of either manifest: Outlook caches a manifest by its version.
ADDIN_VERSION = "1.0.0"
SCHEMA_VERSION = "1.24"
_NAMESPACE = uuid.UUID("6f1f6a52-3f7e-4c0b-9a55-5ea1a11e0a14")  # sealmail's add-in ids

ICON_SIZES = (16, 32, 80)
SEND_TIP = "Mark this message to be sent securely: recipients read it in the secure portal."
OPTIONS_TIP = (
    "Choose how long the message may be read, whether you get a receipt, and who may "
    "reply or forward it."
)


def addin_id(tenant_id: str) -> str:
    """The add-in's GUID for a tenant: stable across restarts, hosts and versions."""
    return str(uuid.uuid5(_NAMESPACE, f"sealmail-outlook-addin:{tenant_id}"))


def https_base(portal_base_url: str, tenant: Tenant) -> str:
    """The tenant's portal base under https (Outlook loads add-ins only over HTTPS; a
    TLS-terminating proxy in front of the portal gives it)."""
    base = portal_url_for(portal_base_url, tenant.portal_host)
    parts = urlsplit(base)
    return f"https://{parts.netloc}{parts.path.rstrip('/')}"


def _urls(base: str, tenant: Tenant) -> dict[str, str]:
    # on the service's own host the pages learn their tenant from the query; on the
    # tenant's own host, from the host
    q = "" if tenant.portal_host else f"?tenant={tenant.id}"
    return {
        "taskpane": f"{base}/addin/taskpane.html{q}",
        "commands": f"{base}/addin/commands.html{q}",
        "commands_js": f"{base}/addin/commands.js{q}",
        "help": f"{base}/addin/help{q}",
        "privacy": f"{base}/addin/help{q}#privacy",
        "terms": f"{base}/addin/help{q}#terms",
        **{f"icon{n}": f"{base}/addin/static/icon-{n}.png" for n in (16, 32, 64, 80, 128)},
    }


def _description(tenant: Tenant) -> str:
    return (
        f"Send a message securely through {tenant.name}'s sealmail gateway, set how long it "
        "may be read and who may reply or forward it, and get a warning before sending "
        "something the policy protects."
    )


def manifest_xml(tenant: Tenant, base: str) -> str:
    """The XML manifest. The schema enforces element order; every URL is HTTPS."""
    u = _urls(base, tenant)
    origin = f"https://{urlsplit(base).netloc}"
    images = "".join(
        f'<bt:Image id="Icon.{n}" DefaultValue={quoteattr(u[f"icon{n}"])}/>' for n in ICON_SIZES
    )
    icon = "".join(f'<bt:Image size="{n}" resid="Icon.{n}"/>' for n in ICON_SIZES)
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<OfficeApp xmlns="http://schemas.microsoft.com/office/appforoffice/1.1"
  xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"
  xmlns:bt="http://schemas.microsoft.com/office/officeappbasictypes/1.0"
  xmlns:mailappor="http://schemas.microsoft.com/office/mailappversionoverrides/1.0"
  xsi:type="MailApp">
  <Id>{addin_id(tenant.id)}</Id>
  <Version>{ADDIN_VERSION}.0</Version>
  <ProviderName>sealmail</ProviderName>
  <DefaultLocale>en-US</DefaultLocale>
  <DisplayName DefaultValue="Send Secure"/>
  <Description DefaultValue={quoteattr(_description(tenant))}/>
  <IconUrl DefaultValue={quoteattr(u["icon64"])}/>
  <HighResolutionIconUrl DefaultValue={quoteattr(u["icon128"])}/>
  <SupportUrl DefaultValue={quoteattr(u["help"])}/>
  <AppDomains>
    <AppDomain>{origin}</AppDomain>
  </AppDomains>
  <Hosts>
    <Host Name="Mailbox"/>
  </Hosts>
  <Requirements>
    <Sets>
      <Set Name="Mailbox" MinVersion="1.1"/>
    </Sets>
  </Requirements>
  <FormSettings>
    <Form xsi:type="ItemEdit">
      <DesktopSettings>
        <SourceLocation DefaultValue={quoteattr(u["taskpane"])}/>
      </DesktopSettings>
    </Form>
  </FormSettings>
  <Permissions>ReadWriteItem</Permissions>
  <Rule xsi:type="RuleCollection" Mode="Or">
    <Rule xsi:type="ItemIs" ItemType="Message" FormType="Edit"/>
  </Rule>
  <DisableEntityHighlighting>false</DisableEntityHighlighting>
  <VersionOverrides xmlns="http://schemas.microsoft.com/office/mailappversionoverrides"
    xsi:type="VersionOverridesV1_0">
    <VersionOverrides xmlns="http://schemas.microsoft.com/office/mailappversionoverrides/1.1"
      xsi:type="VersionOverridesV1_1">
      <Requirements>
        <bt:Sets DefaultMinVersion="1.12">
          <bt:Set Name="Mailbox"/>
        </bt:Sets>
      </Requirements>
      <Hosts>
        <Host xsi:type="MailHost">
          <Runtimes>
            <Runtime resid="Commands.Url">
              <Override type="javascript" resid="CommandsJs.Url"/>
            </Runtime>
          </Runtimes>
          <DesktopFormFactor>
            <FunctionFile resid="Commands.Url"/>
            <ExtensionPoint xsi:type="MessageComposeCommandSurface">
              <OfficeTab id="TabDefault">
                <Group id="sealmail.group">
                  <Label resid="Group.Label"/>
                  <Control xsi:type="Button" id="sealmail.sendSecure">
                    <Label resid="SendSecure.Label"/>
                    <Supertip>
                      <Title resid="SendSecure.Label"/>
                      <Description resid="SendSecure.Tip"/>
                    </Supertip>
                    <Icon>{icon}</Icon>
                    <Action xsi:type="ExecuteFunction">
                      <FunctionName>markSecure</FunctionName>
                    </Action>
                  </Control>
                  <Control xsi:type="Button" id="sealmail.options">
                    <Label resid="Options.Label"/>
                    <Supertip>
                      <Title resid="Options.Label"/>
                      <Description resid="Options.Tip"/>
                    </Supertip>
                    <Icon>{icon}</Icon>
                    <Action xsi:type="ShowTaskpane">
                      <SourceLocation resid="Taskpane.Url"/>
                    </Action>
                  </Control>
                </Group>
              </OfficeTab>
            </ExtensionPoint>
            <ExtensionPoint xsi:type="LaunchEvent">
              <LaunchEvents>
                <LaunchEvent Type="OnMessageSend" FunctionName="onMessageSendHandler"
                  SendMode="SoftBlock"/>
              </LaunchEvents>
              <SourceLocation resid="Commands.Url"/>
            </ExtensionPoint>
          </DesktopFormFactor>
        </Host>
      </Hosts>
      <Resources>
        <bt:Images>{images}</bt:Images>
        <bt:Urls>
          <bt:Url id="Commands.Url" DefaultValue={quoteattr(u["commands"])}/>
          <bt:Url id="CommandsJs.Url" DefaultValue={quoteattr(u["commands_js"])}/>
          <bt:Url id="Taskpane.Url" DefaultValue={quoteattr(u["taskpane"])}/>
        </bt:Urls>
        <bt:ShortStrings>
          <bt:String id="Group.Label" DefaultValue="sealmail"/>
          <bt:String id="SendSecure.Label" DefaultValue="Send Secure"/>
          <bt:String id="Options.Label" DefaultValue="Secure options"/>
        </bt:ShortStrings>
        <bt:LongStrings>
          <bt:String id="SendSecure.Tip" DefaultValue={quoteattr(SEND_TIP)}/>
          <bt:String id="Options.Tip" DefaultValue={quoteattr(OPTIONS_TIP)}/>
        </bt:LongStrings>
      </Resources>
    </VersionOverrides>
  </VersionOverrides>
</OfficeApp>
"""


def _icons(base: str) -> list[dict[str, Any]]:
    return [{"size": n, "url": f"{base}/addin/static/icon-{n}.png"} for n in ICON_SIZES]


def manifest_json(tenant: Tenant, base: str) -> dict[str, Any]:
    """The unified manifest (Microsoft 365 app manifest, schema v1.24). ``icons`` are paths
    relative to the manifest, as in an app package: ``/addin/color.png`` and
    ``/addin/outline.png`` sit beside it."""
    u = _urls(base, tenant)
    return {
        "$schema": "https://developer.microsoft.com/json-schemas/teams/"
        f"v{SCHEMA_VERSION}/MicrosoftTeams.schema.json",
        "manifestVersion": SCHEMA_VERSION,
        "version": ADDIN_VERSION,
        "id": addin_id(tenant.id),
        "localizationInfo": {"defaultLanguageTag": "en-us"},
        "developer": {
            "name": "sealmail",
            "websiteUrl": u["help"],
            "privacyUrl": u["privacy"],
            "termsOfUseUrl": u["terms"],
        },
        "name": {"short": "Send Secure", "full": "Send Secure with sealmail"},
        "description": {
            "short": "Send a message securely and get warned before sending protected data.",
            "full": _description(tenant),
        },
        "icons": {"outline": "outline.png", "color": "color.png"},
        "accentColor": "#1F4E79",
        "validDomains": [urlsplit(base).netloc],
        "authorization": {
            "permissions": {
                "resourceSpecific": [{"name": "MailboxItem.ReadWrite.User", "type": "Delegated"}]
            }
        },
        "extensions": [
            {
                "requirements": {
                    "scopes": ["mail"],
                    "capabilities": [{"name": "Mailbox", "minVersion": "1.12"}],
                },
                "runtimes": [
                    {
                        "id": "CommandsRuntime",
                        "type": "general",
                        "code": {"page": u["commands"], "script": u["commands_js"]},
                        "lifetime": "short",
                        "actions": [
                            {"id": "markSecure", "type": "executeFunction"},
                            {"id": "onMessageSendHandler", "type": "executeFunction"},
                        ],
                    },
                    {
                        "id": "TaskpaneRuntime",
                        "type": "general",
                        "code": {"page": u["taskpane"]},
                        "lifetime": "short",
                        "actions": [{"id": "showOptions", "type": "openPage"}],
                    },
                ],
                "ribbons": [
                    {
                        "contexts": ["mailCompose"],
                        "tabs": [
                            {
                                "builtInTabId": "TabDefault",
                                "groups": [
                                    {
                                        "id": "sealmailGroup",
                                        "label": "sealmail",
                                        "icons": _icons(base),
                                        "controls": [
                                            {
                                                "id": "sendSecure",
                                                "type": "button",
                                                "label": "Send Secure",
                                                "icons": _icons(base),
                                                "supertip": {
                                                    "title": "Send Secure",
                                                    "description": SEND_TIP,
                                                },
                                                "actionId": "markSecure",
                                            },
                                            {
                                                "id": "secureOptions",
                                                "type": "button",
                                                "label": "Secure options",
                                                "icons": _icons(base),
                                                "supertip": {
                                                    "title": "Secure options",
                                                    "description": OPTIONS_TIP,
                                                },
                                                "actionId": "showOptions",
                                            },
                                        ],
                                    }
                                ],
                            }
                        ],
                    }
                ],
                "autoRunEvents": [
                    {
                        "requirements": {
                            "capabilities": [{"name": "Mailbox", "minVersion": "1.12"}],
                            "scopes": ["mail"],
                        },
                        "events": [
                            {
                                "type": "messageSending",
                                "actionId": "onMessageSendHandler",
                                "options": {"sendMode": "softBlock"},
                            }
                        ],
                    }
                ],
            }
        ],
    }


async def _tenant_and_base(request: Request) -> tuple[Tenant, str] | Response:
    tenant = await manifest_tenant(request)
    if tenant is None:
        return PlainTextResponse(
            "No such tenant here. On the service's own host, add ?tenant=<tenant id>.\n",
            status_code=404,
        )
    return tenant, https_base(portal(request).settings.portal_base_url, tenant)


async def xml_manifest(request: Request) -> Response:
    """``GET /addin/manifest.xml``."""
    found = await _tenant_and_base(request)
    if isinstance(found, Response):
        return found
    tenant, base = found
    return Response(
        manifest_xml(tenant, base),
        media_type="application/xml",
        headers={"Cache-Control": "no-cache", "Cross-Origin-Resource-Policy": "cross-origin"},
    )


async def json_manifest(request: Request) -> Response:
    """``GET /addin/manifest.json``."""
    found = await _tenant_and_base(request)
    if isinstance(found, Response):
        return found
    tenant, base = found
    return Response(
        json.dumps(manifest_json(tenant, base), indent=2) + "\n",
        media_type="application/json",
        headers={"Cache-Control": "no-cache", "Cross-Origin-Resource-Policy": "cross-origin"},
    )
