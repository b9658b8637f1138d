"""The exact Exchange Online PowerShell and the Google Workspace steps for one tenant,
filled in with its values (the facts of docs/deploy/microsoft-365.md and
docs/deploy/google-workspace.md; keep the three consistent)."""

from __future__ import annotations

from dataclasses import dataclass

from core.config.settings import Settings

TOKEN_PLACEHOLDER = "<paste the connector token you were given>"  # noqa: S105 - a placeholder
OUTBOUND_NAME = "sealmail (encryption)"
INBOUND_NAME = "sealmail (back from encryption)"
RULE_NAME = "Encrypt with sealmail"


@dataclass(frozen=True)
class Gateway:
    """Where the tenant's mail server must send: host, port, and the name of the
    certificate sealmail shows when it hands mail back (for the inbound connector)."""

    host: str
    port: int
    cert_name: str


def gateway_of(settings: Settings) -> Gateway:
    _host, _, port = settings.smtp_listen.rpartition(":")
    return Gateway(
        host=settings.smtp_hostname,
        port=int(port) if port.isdigit() else 25,
        cert_name=client_cert_name(settings.relay_tls_client_cert) or settings.smtp_hostname,
    )


def client_cert_name(path: str) -> str:
    """The first DNS name (else the common name) of the certificate sealmail shows the
    next hop, "" when there is none or it cannot be read."""
    if not path:
        return ""
    try:
        from cryptography import x509
        from cryptography.x509.oid import NameOID

        with open(path, "rb") as f:
            cert = x509.load_pem_x509_certificate(f.read())
        try:
            san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
            names = san.value.get_values_for_type(x509.DNSName)
            if names:
                return str(names[0])
        except x509.ExtensionNotFound:
            pass
        cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        return str(cns[0].value) if cns else ""
    except Exception:  # noqa: BLE001 - the page falls back to the SMTP host name
        return ""


def exchange_endpoint(domains: list[str], relay: str) -> str:
    """The tenant's Exchange Online endpoint: its next hop when set, else Microsoft's MX
    host for its first domain (``contoso-com.mail.protection.outlook.com``)."""
    if relay and relay != "mx":
        return relay
    first = domains[0] if domains else "example.com"
    return f"{first.replace('.', '-')}.mail.protection.outlook.com:25"


def powershell(gw: Gateway, token: str = "") -> list[tuple[str, str, str]]:
    """``(id, title, code)`` of each block, in the order they are run."""
    value = token or TOKEN_PLACEHOLDER
    outbound = (
        f'New-OutboundConnector -Name "{OUTBOUND_NAME}" -ConnectorType Partner `\n'
        f'  -SmartHosts "{gw.host}" -UseMXRecord $false -IsTransportRuleScoped $true `\n'
        f'  -TlsSettings DomainValidation -TlsDomain "{gw.host}"'
    )
    rule = (
        f'New-TransportRule -Name "{RULE_NAME}" -Priority 0 `\n'
        "  -FromScope InOrganization -SentToScope NotInOrganization `\n"
        f'  -SetHeaderName "X-Sealmail-Tenant-Token" -SetHeaderValue "{value}" `\n'
        f'  -RouteMessageOutboundConnector "{OUTBOUND_NAME}" `\n'
        '  -ExceptIfHeaderMatchesMessageHeader "X-Sealmail-Processed" '
        '-ExceptIfHeaderMatchesPatterns "." `\n'
        "  -StopRuleProcessing $true"
    )
    inbound = (
        f'New-InboundConnector -Name "{INBOUND_NAME}" -ConnectorType OnPremises `\n'
        "  -SenderDomains * -RequireTls $true -RestrictDomainsToCertificate $true `\n"
        f'  -TlsSenderCertificateName "{gw.cert_name}"\n'
        "# or, by the gateway's sending address instead of its certificate:\n"
        f'# New-InboundConnector -Name "{INBOUND_NAME}" -ConnectorType OnPremises `\n'
        "#   -SenderDomains * -SenderIPAddresses <sealmail's public address> "
        "-RestrictDomainsToIPAddresses $true"
    )
    return [
        ("ps-outbound", "1. The outbound connector, from Exchange Online to sealmail", outbound),
        ("ps-rule", "2. The mail flow rule that sends external mail through it", rule),
        ("ps-inbound", "3. The inbound connector for mail coming back from sealmail", inbound),
    ]
