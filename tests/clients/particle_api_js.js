// Drives Fleet Console's API with Particle's own JavaScript client (particle-api-js 12).
// Usage: node particle_api_js.js <baseUrl> <username> <password> <deviceId> <workDir> <otherDeviceId>
//        <removedDeviceId> <serialOfDevice> <quarantinedSerial> <quarantinedDeviceId>
// Prints one JSON object with what every call answered; tests/clients/test_particle_api_js.py
// checks it and the stored state.
const fs = require('fs');
const path = require('path');
const Particle = require('particle-api-js');

const [baseUrl, username, password, deviceId, workDir, otherDeviceId, removedDeviceId, serial,
    quarantinedSerial, quarantinedDeviceId] = process.argv.slice(2);
const product = 'acme';
const particle = new Particle({ baseUrl });
const binary = Buffer.from('fleet console firmware v7\n'.repeat(40));

async function failure(promise) {
    try {
        await promise;
        return { resolved: true };
    } catch (error) {
        return { statusCode: error.statusCode, body: error.body };
    }
}

async function main() {
    const out = {};
    const login = await particle.login({ username, password });
    const auth = login.body.access_token;
    out.login = { statusCode: login.statusCode, token_type: login.body.token_type, expires_in: login.body.expires_in };
    out.badLogin = await failure(particle.login({ username, password: 'wrong' }));

    // Groups through the generic request helpers (JSON bodies, form bodies and plain calls).
    out.createGroup = (await particle.post({ uri: `/v1/products/${product}/groups`, auth, data: { name: 'europe', color: '#22c55e' } })).body;
    out.createFormGroup = (await particle.request({
        uri: `/v1/products/${product}/groups`, method: 'post', auth, form: { name: 'beta', description: 'Prerelease testers' },
    })).body;
    out.editGroup = (await particle.put({ uri: `/v1/products/${product}/groups/beta`, auth, data: { description: 'Testers' } })).body;
    out.getGroup = (await particle.get({ uri: `/v1/products/${product}/groups/europe`, auth })).body;
    out.listGroups = (await particle.get({ uri: `/v1/products/${product}/groups`, auth, query: { name: 'eur' } })).body;
    out.deleteGroup = (await particle.delete({ uri: `/v1/products/${product}/groups/beta`, auth })).statusCode;
    out.batch = (await particle.put({
        uri: `/v1/products/${product}/devices`, auth,
        data: { action: 'groups', devices: [deviceId], metadata: { add: ['europe'], remove: [] } },
    })).body;

    // Devices.
    out.listDevices = (await particle.listDevices({ product, groups: ['europe'], page: 1, perPage: 2, auth })).body;
    out.listPage2 = (await particle.listDevices({ product, page: 2, perPage: 2, auth })).body;
    out.updateDevice = (await particle.updateDevice({
        deviceId, product, auth, name: 'van-7', notes: 'Rear door sensor', development: true,
    })).body;
    out.getDevice = (await particle.getDevice({ deviceId, product, auth })).body;
    out.unknownDevice = await failure(particle.getDevice({ deviceId: 'f'.repeat(24), product, auth }));

    // Firmware.
    out.upload = (await particle.uploadProductFirmware({
        product, auth, file: binary, version: 7, title: 'Door fix', description: 'Fixes the rear door',
    })).body;
    out.duplicateUpload = await failure(particle.uploadProductFirmware({ product, auth, file: binary, version: 7, title: 'Again' }));
    out.listFirmware = (await particle.listProductFirmware({ product, auth })).body;
    out.getFirmware = (await particle.getProductFirmware({ product, auth, version: 7 })).body;
    out.updateFirmware = (await particle.updateProductFirmware({ product, auth, version: 7, title: 'Door fix 2' })).body;
    const downloaded = await particle.downloadProductFirmware({ product, auth, version: 7 });
    out.downloadMatches = Buffer.compare(Buffer.from(downloaded), binary) === 0;
    out.lock = (await particle.lockDeviceProductFirmware({ deviceId, product, auth, desiredFirmwareVersion: 7, flash: false })).body;
    out.lockUnknownVersion = await failure(particle.lockDeviceProductFirmware({ deviceId, product, auth, desiredFirmwareVersion: 99 }));
    out.unlock = (await particle.unlockDeviceProductFirmware({ deviceId, product, auth })).body;
    out.updateDevelopment = (await particle.updateDevice({ deviceId, product, auth, development: false, desiredFirmwareVersion: 7 })).body;
    // The device itself reports v7 through the gateway, with the key a member issued it.
    const deviceKey = (await particle.post({ uri: `/v1/products/${product}/devices/${deviceId}/key`, auth })).body.device_key;
    const reported = await fetch(`${baseUrl}/v1/device/handshake`, {
        method: 'POST',
        headers: {
            Authorization: `Basic ${Buffer.from(`${deviceId}:${deviceKey}`).toString('base64')}`,
            'Content-Type': 'application/json',
        },
        body: JSON.stringify({ firmware_version: 7 }),
    });
    out.handshake = await reported.json();
    out.memberHandshake = (await fetch(`${baseUrl}/v1/device/handshake`, {
        method: 'POST', headers: { Authorization: `Bearer ${auth}`, 'Content-Type': 'application/json' },
        body: JSON.stringify({ firmware_version: 7 }),
    })).status;
    out.release = (await particle.releaseProductFirmware({ product, auth, version: 7, groups: ['europe'], product_default: true })).body;
    out.impact = (await particle.get({
        uri: `/v1/products/${product}/impact`, auth,
        query: { action: 'edit_groups_for_firmware', firmware_version: 7, groups: 'europe', product_default: 'true' },
    })).body;

    // The user, their products, team, devices and serial numbers.
    out.user = (await particle.getUserInfo({ auth })).body;
    out.products = (await particle.listProducts({ auth })).body;
    out.product = (await particle.getProduct({ product, auth })).body;
    out.team = (await particle.listTeamMembers({ product, auth })).body;
    out.serial = (await particle.lookupSerialNumber({ serialNumber: serial, auth })).body;
    out.myDevices = (await particle.listDevices({ auth })).body;
    out.missingRoute = await failure(particle.get({ uri: `/v1/products/${product}/no-such-thing`, auth }));

    // Files given by path are streamed (Transfer-Encoding: chunked).
    const idsPath = path.join(workDir, 'ids.txt');
    fs.writeFileSync(idsPath, `${quarantinedSerial}\n${'ab'.repeat(12)}\n`);
    out.addFromFile = (await particle.addDeviceToProduct({ product, file: idsPath, auth })).body;
    const firmwarePath = path.join(workDir, 'v8.bin');
    fs.writeFileSync(firmwarePath, Buffer.from('fleet console firmware v8\n'.repeat(500)));
    out.uploadFromFile = (await particle.uploadProductFirmware({
        product, auth, file: firmwarePath, version: 8, title: 'From a file', description: 'Streamed',
    })).body;

    // Particle's device fields: cloud flash of a development device, signal, deny, unclaim.
    out.flashNotDevelopment = await failure(particle.flashDevice({ deviceId: otherDeviceId, product, files: { 'v8.bin': firmwarePath }, auth }));
    out.markDevelopment = (await particle.markAsDevelopmentDevice({ deviceId: otherDeviceId, product, auth })).body;
    out.flash = (await particle.flashDevice({ deviceId: otherDeviceId, product, files: { 'v8.bin': firmwarePath }, auth })).body;
    out.signal = await failure(particle.signalDevice({ deviceId, product, signal: true, auth }));
    out.quarantinedBefore = (await particle.get({ uri: `/v1/products/${product}/devices`, auth, query: { quarantined: true } })).body;
    out.deny = (await particle.removeDevice({ deviceId: quarantinedDeviceId, deny: true, product, auth })).statusCode;
    out.unclaim = (await particle.removeDeviceOwner({ deviceId, product, auth })).body;
    out.remove = (await particle.removeDevice({ deviceId: removedDeviceId, product, auth })).statusCode;

    // Tokens: one that never expires, revoked by value; then revoking them all.
    const forever = await particle.login({ username, password, tokenDuration: 0 });
    out.forever = { expires_in: forever.body.expires_in };
    out.deleteToken = (await particle.deleteAccessToken({ token: forever.body.access_token })).body;
    out.afterDelete = await failure(particle.getUserInfo({ auth: forever.body.access_token }));
    const spare = (await particle.login({ username, password })).body.access_token;

    // Revoking the token ends the session.
    out.revoke = (await particle.deleteCurrentAccessToken({ auth })).body;
    out.afterRevoke = await failure(particle.listDevices({ product, auth }));
    out.revokeAll = (await particle.deleteActiveAccessTokens({ auth: spare })).body;
    out.afterRevokeAll = await failure(particle.getUserInfo({ auth: spare }));
    process.stdout.write(JSON.stringify(out));
}

main().catch((error) => {
    process.stderr.write(`${error.stack || error}\n${JSON.stringify(error.body || {})}\n`);
    process.exit(1);
});
