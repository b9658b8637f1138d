"""Stage 1 of a message: the SMTP listener and the aiosmtpd handler that identify the
tenant, seal the message while DATA streams in and answer ``250`` once it is durable."""
